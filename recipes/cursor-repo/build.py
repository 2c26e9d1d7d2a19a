"""The repo's install step: builds dist/ (a stand-in for `npm install && npm run build`)."""

from pathlib import Path

dist = Path(__file__).parent / "dist"
dist.mkdir(exist_ok=True)
(dist / "index.html").write_text(
    """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title></head>
<body style="font-family:'DejaVu Sans',sans-serif">
  <h1>Shop</h1>
  <ul id="items"><li>loading</li></ul>
  <script>
    // The API is the daemon the environment's start command left running.
    fetch('http://127.0.0.1:47381/items')
      .then((r) => r.json())
      .then((items) => {
        document.getElementById('items').innerHTML = items.map((i) => '<li>' + i + '</li>').join('');
      })
      .catch(() => { document.getElementById('items').textContent = 'API unreachable'; });
  </script>
</body></html>
""",
    encoding="utf-8",
)
print("built dist/index.html")
