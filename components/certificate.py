"""DnsValidatedCertificate: an ACM certificate for one hostname, validated through its
Route 53 zone, usable once ``arn`` resolves (after validation). Created through the
provider of the region that will use it: us-east-1 for CloudFront, the ALB's region for
its listener (ACM certificates are regional)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.tagging import component_tags


class DnsValidatedCertificate(pulumi.ComponentResource):
    """The certificate, its validation record and the validation wait."""

    arn: pulumi.Output[str]
    """The certificate's ARN, known once ACM has validated it."""

    def __init__(
        self,
        name: str,
        *,
        domain_name: str,
        zone_id: str,
        component: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``component``: the tag of the component the certificate serves."""
        super().__init__("trading-infra:tls:DnsValidatedCertificate", name, {}, opts)
        child = pulumi.ResourceOptions(parent=self)
        certificate = aws.acm.Certificate(
            name,
            domain_name=domain_name,
            validation_method="DNS",
            tags=component_tags(component),
            opts=child,
        )
        option = certificate.domain_validation_options[0]
        record = aws.route53.Record(
            f"{name}-validation-record",
            zone_id=zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=300,
            allow_overwrite=True,
            opts=child,
        )
        validation = aws.acm.CertificateValidation(
            f"{name}-validation",
            certificate_arn=certificate.arn,
            validation_record_fqdns=[record.fqdn],
            opts=child,
        )
        self.arn = validation.certificate_arn
        self.register_outputs({"arn": self.arn})
