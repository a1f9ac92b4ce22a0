"""Stack output keys, shared by the stacks that export them and the code that reads them
(StackReferences, drift detection, tests), so a rename cannot silently break a reader."""

REGION = "region"
VPC_ID = "vpcId"
VPC_CIDR = "vpcCidr"
PUBLIC_SUBNET_IDS = "publicSubnetIds"
PRIVATE_SUBNET_IDS = "privateSubnetIds"
REPOSITORY_URL = "repositoryUrl"
IMAGE_REF = "imageRef"
