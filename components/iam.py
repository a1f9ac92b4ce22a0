"""IAM documents more than one component needs."""

from __future__ import annotations

import json


def service_assume_role_policy(service: str) -> str:
    """A trust policy letting one AWS service principal assume a role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        sort_keys=True,
    )
