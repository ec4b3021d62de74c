#!/usr/bin/env bash
# Issue 18's report target end to end: `candies run ... --report r.html` on a
# small simulated section (the demo's simulator, a real run of the fast preset;
# --no-denoise keeps it to seconds: the denoiser's pictures are checked by
# tests/pipeline/cli_test.sh and report_test's RendersInHeadlessChromium),
# then the report rendered in headless Chromium: the screenshot shows the
# domain map (its region is not uniform and holds the map picture's domain
# colours) and the rendered DOM has every section.
# Usage: cli_report_test.sh CANDIES CHROMIUM PYTHON
set -euo pipefail
cli=$1 chromium=$2 py=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$cli" simulate --out "$dir/sim" --grid 12 --seed 1 >/dev/null
"$cli" run --mod1 "$dir/sim/rna.h5ad" --mod2 "$dir/sim/protein.h5ad" --n-clusters 3 \
  --labels-key domain --device cpu --seed 1 --no-denoise --out "$dir/out.h5ad" \
  --report "$dir/r.html" >"$dir/run.out" 2>"$dir/run.err" ||
  { cat "$dir/run.err"; exit 1; }
headless=("$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars
  "--user-data-dir=$dir/profile")
timeout 60 "${headless[@]}" --window-size=1200,1000 "--screenshot=$dir/shot.png" \
  "file://$dir/r.html" >/dev/null 2>&1 || true
test -s "$dir/shot.png" || { echo "no screenshot from $chromium"; exit 1; }
timeout 60 "${headless[@]}" --dump-dom "file://$dir/r.html" >"$dir/dom.html" 2>/dev/null
"$py" - "$dir" <<'PY'
import base64, io, re, sys
from PIL import Image
d = sys.argv[1]
html, dom = open(f"{d}/r.html").read(), open(f"{d}/dom.html").read()
# Every section of the report (core/report), in the rendered DOM and drawn.
for sid in ("domains", "modalities", "denoising", "losses", "confusion", "low-quality",
            "parameters", "seconds", "metrics", "warnings", "markers"):
    assert f'<h2 id="{sid}">' in dom, f"section {sid} not rendered"
for img in ("domains", "modalities", "losses", "confusion"):
    assert f'id="img-{img}"' in dom, f"picture {img} missing"
# The domain map picture's own colours: its most frequent non-grey ones are the
# domains' palette colours (one per domain).
m = re.search(r'<img id="img-domains"[^>]*src="data:image/png;base64,([^"]+)"', html)
pic = Image.open(io.BytesIO(base64.b64decode(m.group(1)))).convert("RGB")
palette = [c for n, c in sorted(pic.getcolors(1 << 24), reverse=True)
           if max(c) - min(c) > 60][:3]
assert len(palette) == 3, palette
shot = Image.open(f"{d}/shot.png").convert("RGB")
assert shot.size == (1200, 1000), shot.size
# The map sits under the title: the top-left region of the first screen.
region = shot.crop((0, 120, 600, 620))
colours = region.getcolors(1 << 24)
non_white = sum(n for n, c in colours if c != (255, 255, 255)) / (600 * 500)
assert len(colours) > 20, f"map region nearly uniform: {len(colours)} colours"
assert non_white > 0.05, f"map region mostly white: {non_white:.2f}"
present = {c for n, c in colours if n >= 20}
missing = [c for c in palette if c not in present]
assert not missing, f"domain colours {missing} of the map not in the screenshot"
print(f"report ok: {len(colours)} colours in the map region, {non_white:.2f} non-white, "
      f"domain colours {palette} shown")
PY
