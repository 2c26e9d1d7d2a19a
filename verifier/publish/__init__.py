"""Publishing evidence to a pull request: a sticky comment, a commit status, the job
summary and hosted images (``verifier publish``; see DESIGN.md's CLI contract).

Knows nothing of browsers or X: it reads finished bundles and talks to GitHub and git.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from verifier._lazy import lazy_exports

if TYPE_CHECKING:
    from verifier.errors import PublishError
    from verifier.publish._bundles import Bundle, load_bundles
    from verifier.publish._comment import COMMENT_LIMIT, Links, render_comment
    from verifier.publish._publish import PublishOptions, PublishResult, publish

__all__ = (
    "COMMENT_LIMIT",
    "Bundle",
    "Links",
    "PublishError",
    "PublishOptions",
    "PublishResult",
    "load_bundles",
    "publish",
    "render_comment",
)

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Bundle": "verifier.publish._bundles",
        "COMMENT_LIMIT": "verifier.publish._comment",
        "Links": "verifier.publish._comment",
        "PublishError": "verifier.errors",
        "PublishOptions": "verifier.publish._publish",
        "PublishResult": "verifier.publish._publish",
        "load_bundles": "verifier.publish._bundles",
        "publish": "verifier.publish._publish",
        "render_comment": "verifier.publish._comment",
    },
)
