"""IAM roles, inline policies and attachments, and the fleet's backup users and their
inline policies (one ``GetAccountAuthorizationDetails`` per filter answers them all,
tags included); the backup users' access keys; KMS keys and aliases."""

from __future__ import annotations

from collections.abc import Sequence

from ops.drift.aws import (
    Compare,
    Fetch,
    Live,
    Reader,
    Scope,
    Unmanaged,
    absent_on,
    as_policy,
    by,
    handler,
    name_of,
    presence,
    tags,
    unordered,
)
from ops.drift.model import Diff
from ops.drift.state import StateResource

_ROLE = "aws:iam/role:Role"
_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
_USER = "aws:iam/user:User"
_USER_POLICY = "aws:iam/userPolicy:UserPolicy"
_ACCESS_KEY = "aws:iam/accessKey:AccessKey"
_KEY = "aws:kms/key:Key"
_ALIAS = "aws:kms/alias:Alias"


def _details(r: Reader, type_: str, region: str, kind: str) -> list[Live]:
    """Every IAM ``kind`` (``Role``, ``User``) with its policies and tags, in one
    paginated ``GetAccountAuthorizationDetails``."""
    return r.items(
        type_,
        "iam",
        region,
        "get_account_authorization_details",
        f"{kind}DetailList",
        Filter=[kind],
    )


def _authorization(type_: str) -> Fetch:
    def fetch(r: Reader, region: str, _: Sequence[StateResource]) -> dict[str, Live]:
        roles = _details(r, type_, region, "Role")
        if type_ == _ROLE:
            return by("RoleName", roles)
        if type_ == _ROLE_POLICY:
            return {
                f"{role['RoleName']}:{policy['PolicyName']}": policy
                for role in roles
                for policy in role.get("RolePolicyList", [])
            }
        return {
            f"{role['RoleName']}|{policy['PolicyArn']}": policy
            for role in roles
            for policy in role.get("AttachedManagedPolicies", [])
        }

    return fetch


def _tagged_for_the_stack(kind: str) -> Unmanaged:
    """IAM ``kind``s carrying every one of the stack's default tags that the state
    lacks (IAM is global: the per-region tag scan does not see it)."""

    def unmanaged(live: dict[str, Live], scope: Scope, known: set[str]) -> list[tuple[str, str]]:
        if not scope.stack_tags:
            return []
        return [
            (name, f"IAM {kind} tagged for the stack ({found.get('Arn')})")
            for name, found in live.items()
            if name not in known and scope.stack_tags.items() <= tags(found.get("Tags")).items()
        ]

    return unmanaged


@handler(_ROLE, unmanaged=_tagged_for_the_stack("role"), global_region="us-east-1")(
    _authorization(_ROLE)
)
def compare_role(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()(
            "assumeRolePolicy",
            state.get("assumeRolePolicy"),
            live.get("AssumeRolePolicyDocument"),
            as_policy,
        )(
            "managedPolicyArns",
            state.get("managedPolicyArns") or None,
            [p.get("PolicyArn") for p in live.get("AttachedManagedPolicies", [])],
            unordered,
        )(
            "permissionsBoundary",
            state.get("permissionsBoundary"),
            (live.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
        )
    ).diffs


@handler(
    _ROLE_POLICY,
    global_region="us-east-1",
    live_id=lambda r: r.id if ":" in r.id else f"{r.get('role')}:{r.get('name')}",
)(_authorization(_ROLE_POLICY))
def compare_role_policy(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("policy", state.get("policy"), live.get("PolicyDocument"), as_policy).diffs


presence(
    _ATTACHMENT,
    _authorization(_ATTACHMENT),
    global_region="us-east-1",
    live_id=lambda r: f"{name_of(str(r.get('role')))}|{r.get('policyArn')}",
    why="the role and the policy are its identity: present is the whole check",
)


@handler(_USER, unmanaged=_tagged_for_the_stack("user"), global_region="us-east-1")(
    lambda r, region, _: by("UserName", _details(r, _USER, region, "User"))
)
def compare_user(state: StateResource, live: Live) -> list[Diff]:
    """Where it sits, and that nothing widened it: a managed policy or a group attached
    by hand adds rights the backup user must not have. (A permissions boundary can only
    narrow them: a backup it breaks shows in backup.prom and the restore drill.)"""
    return (
        Compare()("path", state.get("path"), live.get("Path"))(
            "managedPolicyArns",
            [],
            [p.get("PolicyArn") for p in live.get("AttachedManagedPolicies", [])],
            unordered,
        )("groups", [], live.get("GroupList") or [], unordered)
    ).diffs


def _user_policies(r: Reader, region: str, _: Sequence[StateResource]) -> dict[str, Live]:
    return {
        f"{user['UserName']}:{policy['PolicyName']}": policy
        for user in _details(r, _USER_POLICY, region, "User")
        for policy in user.get("UserPolicyList", [])
    }


@handler(
    _USER_POLICY,
    global_region="us-east-1",
    live_id=lambda r: r.id if ":" in r.id else f"{r.get('user')}:{r.get('name')}",
)(_user_policies)
def compare_user_policy(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("policy", state.get("policy"), live.get("PolicyDocument"), as_policy).diffs


def _access_keys(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    """Every key of the users the state's keys belong to (one call per user): a second
    key made by hand on a backup user is the state's business too."""
    found: dict[str, Live] = {}
    for user in sorted({str(x.get("user")) for x in resources}):
        keys = absent_on(
            ["NoSuchEntity"],
            lambda user=user: r.items(
                _ACCESS_KEY,
                "iam",
                region,
                "list_access_keys",
                "AccessKeyMetadata",
                UserName=user,
            ),
        )
        found |= by("AccessKeyId", keys or [])
    return found


def _other_keys(live: dict[str, Live], _: Scope, known: set[str]) -> list[tuple[str, str]]:
    return [
        (key_id, f"another access key of {key.get('UserName')} ({key.get('Status')})")
        for key_id, key in sorted(live.items())
        if key_id not in known
    ]


@handler(_ACCESS_KEY, unmanaged=_other_keys, global_region="us-east-1")(_access_keys)
def compare_access_key(state: StateResource, live: Live) -> list[Diff]:
    return Compare()("status", state.get("status") or "Active", live.get("Status")).diffs


def _fetch_keys(r: Reader, region: str, resources: Sequence[StateResource]) -> dict[str, Live]:
    listed = {k["KeyId"] for k in r.items(_KEY, "kms", region, "list_keys", "Keys")}
    found: dict[str, Live] = {}
    for resource in resources:
        if resource.id not in listed:
            continue
        # No batch read of a key's state, rotation or policy exists: three calls per key
        # of the state (a key's policy decides who may decrypt the alarms).
        metadata = r.call(_KEY, "kms", region, "describe_key", KeyId=resource.id)["KeyMetadata"]
        rotation = r.call(_KEY, "kms", region, "get_key_rotation_status", KeyId=resource.id)
        policy = r.call(
            _KEY, "kms", region, "get_key_policy", KeyId=resource.id, PolicyName="default"
        )
        found[resource.id] = {
            **metadata,
            "KeyRotationEnabled": rotation.get("KeyRotationEnabled"),
            "Policy": policy.get("Policy"),
        }
    return found


@handler(_KEY)(_fetch_keys)
def compare_key(state: StateResource, live: Live) -> list[Diff]:
    return (
        Compare()("keyState", "Enabled", live.get("KeyState"))(
            "enableKeyRotation", state.get("enableKeyRotation"), live.get("KeyRotationEnabled")
        )("policy", state.get("policy"), live.get("Policy"), as_policy)(
            "description", state.get("description"), live.get("Description") or ""
        )
    ).diffs


@handler(_ALIAS, live_id=lambda r: str(r.get("name") or r.id))(
    lambda r, region, _: by("AliasName", r.items(_ALIAS, "kms", region, "list_aliases", "Aliases"))
)
def compare_alias(state: StateResource, live: Live) -> list[Diff]:
    return Compare()(
        "targetKeyId", state.get("targetKeyId"), live.get("TargetKeyId"), lambda v: name_of(str(v))
    ).diffs
