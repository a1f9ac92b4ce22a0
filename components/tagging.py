"""The tag every component puts on its children.

The stack's provider adds ``project``, ``stack``, ``region`` and ``managed-by`` to every
taggable resource through its default tags; each component adds ``component`` so cost
reports and drift detection can tell which part of the program owns a resource.
"""

COMPONENT_TAG = "component"


def component_tags(component: str) -> dict[str, str]:
    """Tags for the children of ``component`` (a module name such as ``network``)."""
    return {COMPONENT_TAG: component}
