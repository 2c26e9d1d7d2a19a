"""Publishing evidence to a pull request: a sticky comment, a commit status, the job
summary and hosted images (``verifier publish``; see DESIGN.md's CLI contract).

Knows nothing of browsers or X: it reads finished bundles and talks to GitHub and git.
"""

from __future__ import annotations

from verifier.publish._bundles import Bundle, load_bundles
from verifier.publish._comment import COMMENT_LIMIT, Links, render_comment
from verifier.publish._errors import PublishError
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
