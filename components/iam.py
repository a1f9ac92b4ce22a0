"""IAM documents more than one component needs."""

from __future__ import annotations

import json


def service_assume_role_policy(
    service: str, account_id: str, source_arn_pattern: str | None = None
) -> str:
    """A trust policy letting one AWS service principal assume a role, on behalf of this
    account only (``aws:SourceAccount``) and, where the service sends it, only for the
    resources matching ``source_arn_pattern`` (``aws:SourceArn``): the cross-service
    confused-deputy guard of the IAM User Guide ("The confused deputy problem")."""
    condition: dict[str, dict[str, str]] = {"StringEquals": {"aws:SourceAccount": account_id}}
    if source_arn_pattern is not None:
        condition["ArnLike"] = {"aws:SourceArn": source_arn_pattern}
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                    "Condition": condition,
                }
            ],
        },
        sort_keys=True,
    )
