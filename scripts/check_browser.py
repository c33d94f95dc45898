#!/usr/bin/env python3
"""Check that the built book renders in a real browser, offline: every page, its figures, math and pyvis graphs.

    python scripts/check_browser.py [PAGE ...] [--html book/_build/html] [--require figure,math,pyvis]

PAGE is a page of the built book, e.g. `chapters/03_cifar10` (".html" optional). Without PAGE, every page of
the toc is checked (root, chapters, glossary), and the first chapter must hold a figure, math and a pyvis graph.
On every page, what is there must work: every figure in a cell output loads, math typesets without errors
wherever the page has math, every pyvis graph draws, the page logs no JavaScript error and requests nothing
from another host. It prints, per page, the counts of figures, tables and graphs (and warns about code lines
cut off at the right edge and about raw DataFrames or NaN in tables).

How: the built HTML is served on 127.0.0.1 by `http.server` in a thread, and Debian's headless chromium
(`/usr/bin/chromium`) opens, for each page, a small same-origin harness that loads the page in an iframe,
lets it run (`--virtual-time-budget`) and writes what it finds into its own DOM, which `--dump-dom` prints:
  - figure: an <img> inside a notebook cell output that actually loaded (naturalWidth > 0);
  - math:   MathJax (the vendored copy, no CDN) produced `mjx-container` elements and no `mjx-merror`;
  - pyvis:  an <iframe srcdoc> holding vis-network whose document has a drawn <canvas> and a `network`.
The browser cannot resolve any host name (`--host-resolver-rules`), so a page that needs the internet fails
here as it would for a reader offline; the harness also lists every resource the page (and each graph inside
it) requested (`performance.getEntriesByType("resource")`) and fails on any that is not on the local server.
A screenshot of each page goes to book/_build/screenshots/.
It also fails on: any <script src>, <link href>, <img src> or <iframe src> pointing to another host, in any
built page or inside an iframe's srcdoc (--allow-external downgrades this to a warning), and any 404 from the
local server.

Exit status: 0 all checks passed, 1 a check failed, 2 chromium is missing or the input is wrong.
"""
from __future__ import annotations

import argparse
import functools
import html
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("LUMINA_CHROMIUM", "/usr/bin/chromium"))  # override for tests only
CHECKS = ("figure", "math", "pyvis")
HARNESS = "/__lumina_check__.html"

# Runs in the harness page; the checked page is same-origin, and so are srcdoc iframes inside it.
HARNESS_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>check</title></head>
<body style="margin:0">
<pre id="result">{"status": "pending"}</pre>
<iframe id="page" src="__SRC__" style="width:1280px;height:4000px;border:0"></iframe>
<script>
const out = document.getElementById("result");
const frame = document.getElementById("page");
let scrolled = false;
function inspect() {
  let d, w;
  try { d = frame.contentDocument; w = frame.contentWindow; }
  catch (e) { out.textContent = JSON.stringify({status: "error", error: String(e)}); return; }
  if (!d || !d.body || d.readyState !== "complete") return;
  const imgs = [...d.querySelectorAll(".cell_output img, .output img")];
  const local = u => u.startsWith(w.location.origin) || /^(data|blob|about):/.test(u);
  const requested = win => { try { return win.performance.getEntriesByType("resource").map(e => e.name); }
                             catch (e) { return []; } };
  const article = d.querySelector("article") || d.body;
  const tables = [...article.querySelectorAll("table")];
  // code boxes of visible input cells whose lines run past the right edge (hidden inputs have no width)
  const cut = [...d.querySelectorAll(".cell_input pre")]
    .filter(p => p.clientWidth > 0 && p.scrollWidth > p.clientWidth + 2);
  const graphs = [...d.querySelectorAll("iframe[srcdoc]")]
    .filter(f => /vis-network|vis\\.Network/.test(f.getAttribute("srcdoc")));
  if (!scrolled) { graphs.forEach(f => f.scrollIntoView()); scrolled = true; }
  const pyvis = graphs.map(f => {
    let cd = null, cw = null;
    try { cd = f.contentDocument; cw = f.contentWindow; } catch (e) {}
    const canvases = cd ? [...cd.querySelectorAll("canvas")] : [];
    return {
      canvases: canvases.length,
      canvas_size: canvases.map(c => [c.width, c.height]),
      vis_loaded: !!(cw && cw.vis && cw.vis.Network),
      network: !!(cw && cw.network),
      nodes: (cw && cw.nodes && cw.nodes.length) || 0,
    };
  });
  let foreign = requested(w).filter(u => !local(u));
  graphs.forEach(f => { try { foreign = foreign.concat(requested(f.contentWindow).filter(u => !local(u))); }
                        catch (e) {} });
  out.textContent = JSON.stringify({
    status: "ok",
    tables: tables.length,
    raw_dataframes: tables.filter(t => t.classList.contains("dataframe")).length,
    nan_cells: tables.reduce((n, t) => n + [...t.querySelectorAll("td")]
                               .filter(c => /^\\s*(NaN|nan|None)\\s*$/.test(c.textContent)).length, 0),
    code_cut_off: cut.length,
    foreign_requests: foreign,
    url: w.location.pathname,
    title: d.title,
    images_in_outputs: imgs.length,
    images_loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    math_nodes: d.querySelectorAll(".math").length,
    mathjax_version: (w.MathJax && w.MathJax.version) || null,
    mjx_containers: d.querySelectorAll("mjx-container").length,
    mjx_errors: d.querySelectorAll("mjx-merror, mjx-container [data-mjx-error]").length,
    pyvis: pyvis,
  });
}
setInterval(inspect, 200);
</script>
</body></html>
"""

INSTALL_HINT = (
    "chromium is not installed at /usr/bin/chromium. Install Debian's package:\n"
    "    apt-get update && apt-get install -y chromium\n"
    "(or skip the browser check: python scripts/build_book.py --no-browser)"
)

PYVIS_HINT = (
    "pyvis 0.3.2 links Bootstrap from cdn.jsdelivr.net even with cdn_resources='in_line' (its template\n"
    "always emits those two tags; they only style the card around the graph). Remove them from\n"
    "net.generate_html() before embedding, e.g. re.sub(r'<(link|script)[^>]*cdn\\.jsdelivr\\.net[^>]*>(\\s*</script>)?', '', s)."
)


# ---- static scan: external resources ----------------------------------------------------------------
class _Assets(HTMLParser):
    """Collect external <script src>, <link href>, <img src>, <iframe src>; recurse into srcdoc."""

    LINK_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon", "shortcut", "manifest"}

    def __init__(self, where: str):
        super().__init__(convert_charrefs=True)
        self.where = where
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        url = None
        if tag == "script":
            url = a.get("src")
        elif tag == "link" and set((a.get("rel") or "").lower().split()) & self.LINK_RELS:
            url = a.get("href")
        elif tag in ("img", "iframe"):
            url = a.get("src")
        if url and is_external(url):
            self.found.append(f"{self.where}: <{tag}> {url}")
        if tag == "iframe" and a.get("srcdoc"):
            inner = _Assets(self.where + " (iframe srcdoc)")
            inner.feed(a["srcdoc"])  # attribute values arrive unescaped
            self.found += inner.found


def is_external(url: str) -> bool:
    u = urlparse(url.strip())
    return u.scheme in ("http", "https") or url.strip().startswith("//")


def scan_external(html_dir: Path) -> list[str]:
    found = []
    for page in sorted(html_dir.rglob("*.html")):
        p = _Assets(str(page.relative_to(html_dir)))
        p.feed(page.read_text(encoding="utf-8", errors="replace"))
        found += p.found
    return found


# ---- local server ------------------------------------------------------------------------------------
class _Handler(http.server.SimpleHTTPRequestHandler):
    log: list[tuple[str, int]] = []

    def do_GET(self):
        u = urlparse(self.path)
        if u.path == HARNESS:
            page = parse_qs(u.query).get("page", [""])[0]
            body = HARNESS_HTML.replace("__SRC__", html.escape("/" + quote(page.lstrip("/")))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_request(self, code="-", size="-"):
        self.log.append((self.path, int(code) if str(code).isdigit() else 0))

    def log_message(self, format, *args):  # quiet
        pass


def serve(html_dir: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_Handler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# ---- chromium ----------------------------------------------------------------------------------------
def chromium(args: list[str], budget_ms: int, timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="lumina-chromium-") as profile:
        cmd = [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--enable-logging=stderr", "--v=0",
            # Offline, deterministically: no host name resolves except the local server's address.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *args,
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def inspect_page(base: str, page: str, budget_ms: int, timeout: float) -> dict:
    r = chromium(["--dump-dom", f"{base}{HARNESS}?page={quote(page)}"], budget_ms, timeout)
    m = re.search(r'<pre id="result">(.*?)</pre>', r.stdout, re.S)
    if not m:
        tail = (r.stderr or "").strip().splitlines()[-15:]
        raise RuntimeError(f"chromium returned no result for {page} (exit {r.returncode}):\n  " + "\n  ".join(tail))
    res = json.loads(html.unescape(m.group(1)))
    # JavaScript errors the page (or a graph inside it) logged, as chromium prints them with --enable-logging
    res["console_errors"] = sorted({c.group(1)[:300] for c in re.finditer(r':CONSOLE[^\]]*\] "(.*?)", source', r.stderr)
                                    if re.search(r"Uncaught|Error", c.group(1))})
    return res


def screenshot(base: str, page: str, out: Path, size: str, budget_ms: int, timeout: float) -> bool:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    chromium([f"--screenshot={out}", f"--window-size={size}", f"{base}/{quote(page)}"], budget_ms, timeout)
    return out.is_file() and out.stat().st_size > 0


# ---- which pages -------------------------------------------------------------------------------------
def default_pages(toc_path: Path) -> list[tuple[str, tuple[str, ...]]]:
    """Every page of a jb-book toc in reading order: (root, math), (first chapter, all checks), then the other
    pages with no required content (what they hold must still render: see `verdict`)."""
    import yaml

    toc = yaml.safe_load(toc_path.read_text())

    def files(node):
        if isinstance(node, list):
            return [f for item in node for f in files(item)]
        if isinstance(node, dict):
            return ([node["file"]] if "file" in node else []) + [
                f for k, v in node.items() if isinstance(v, (list, dict)) for f in files(v)]
        return []

    rest = files({k: v for k, v in toc.items() if k != "root"})
    first = next((f for f in rest if "chapters/" in f), None)
    return [(toc["root"], ("math",))] + [(f, CHECKS if f == first else ()) for f in rest]


def page_file(spec: str) -> str:
    spec = spec.strip("/")
    for suffix in (".ipynb", ".md"):
        spec = spec.removesuffix(suffix)
    return spec if spec.endswith(".html") else spec + ".html"


def verdict(res: dict, required: tuple[str, ...]) -> list[str]:
    """Failed checks, as sentences: what `required` names must be on the page, and whatever is on the page
    must work (figures load, math typesets, graphs draw, no console error, nothing from another host)."""
    fails = []
    if res.get("status") != "ok":
        return [f"the page did not finish loading ({res})"]
    if "figure" in required and res["images_loaded"] < 1:
        fails.append(f"no figure: {res['images_in_outputs']} <img> in cell outputs, {res['images_loaded']} loaded")
    elif res["images_loaded"] < res["images_in_outputs"]:
        fails.append(f"{res['images_in_outputs'] - res['images_loaded']} of {res['images_in_outputs']} figures "
                     "did not load")
    if res.get("math_nodes") and "math" not in required:
        required = (*required, "math")  # a page with math must typeset it
    if res.get("pyvis") and "pyvis" not in required:
        required = (*required, "pyvis")  # and draw every graph it holds
    for c in res.get("console_errors", []):
        fails.append(f"JavaScript console error: {c}")
    for u in res.get("foreign_requests", []):
        fails.append(f"requested from another host: {u}")
    if "math" in required:
        if not res["mathjax_version"]:
            fails.append("no math: MathJax did not load (is _static/mathjax/tex-chtml.js in the site?)")
        elif res["mjx_containers"] < 1:
            fails.append(f"no math: MathJax {res['mathjax_version']} loaded but typeset nothing "
                         f"({res['math_nodes']} math nodes on the page)")
    if "math" in required or res["mjx_containers"]:
        if res["mjx_errors"]:
            fails.append(f"{res['mjx_errors']} MathJax error(s) in the typeset math")
    if "pyvis" in required:
        drawn = [g for g in res["pyvis"] if g["canvases"] and g["vis_loaded"]
                 and all(w > 0 and h > 0 for w, h in g["canvas_size"])]
        if not res["pyvis"]:
            fails.append("no pyvis graph: no <iframe srcdoc> holding vis-network")
        elif len(drawn) < len(res["pyvis"]):
            fails.append(f"pyvis: {len(res['pyvis']) - len(drawn)} of {len(res['pyvis'])} graph(s) did not draw "
                         f"a canvas ({res['pyvis']})")
    return fails


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pages", nargs="*", help="pages to check (default: first chapter in the toc, and the root)")
    ap.add_argument("--html", type=Path, default=ROOT / "book" / "_build" / "html", help="built site")
    ap.add_argument("--toc", type=Path, default=None,
                    help="toc for the default pages (default: <html>/../src/_toc.yml, else book/_toc.yml)")
    ap.add_argument("--require", default=",".join(CHECKS),
                    help=f"checks for pages named on the command line (default: {','.join(CHECKS)})")
    ap.add_argument("--screenshots", type=Path, default=None, help="default: <html>/../screenshots")
    ap.add_argument("--window-size", default="1280,3000")
    ap.add_argument("--budget-ms", type=int, default=15000, help="chromium --virtual-time-budget")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per chromium run")
    ap.add_argument("--allow-external", action="store_true",
                    help="only warn about resources loaded from other hosts")
    args = ap.parse_args(argv)

    say = functools.partial(print, "[check_browser]", flush=True)
    if not CHROMIUM.exists():
        print(INSTALL_HINT.replace("/usr/bin/chromium", str(CHROMIUM)), file=sys.stderr)
        return 2
    html_dir = args.html.resolve()
    if not (html_dir / "index.html").is_file():
        print(f"[check_browser] no built book at {html_dir} (run `make book` first)", file=sys.stderr)
        return 2
    required = tuple(c.strip() for c in args.require.split(",") if c.strip())
    if set(required) - set(CHECKS):
        print(f"[check_browser] unknown check(s) {set(required) - set(CHECKS)}; valid: {CHECKS}", file=sys.stderr)
        return 2
    if args.pages:
        pages = [(page_file(p), required) for p in args.pages]
    else:
        toc = args.toc or next((t for t in (html_dir.parent / "src" / "_toc.yml", ROOT / "book" / "_toc.yml")
                                if t.is_file()), None)
        if toc is None:
            print("[check_browser] no _toc.yml found; name the pages to check", file=sys.stderr)
            return 2
        pages = [(page_file(p), req) for p, req in default_pages(toc)]
        if not any(req == CHECKS for _, req in pages):
            say("WARNING: the toc has no chapter page yet: no page is required to hold a figure or a graph")
    shots = (args.screenshots or html_dir.parent / "screenshots").resolve()

    failures: list[str] = []
    counts: list[tuple[str, int, int, int]] = []
    external = scan_external(html_dir)
    for e in external:
        say(("WARNING" if args.allow_external else "FAIL") + f": loads from another host: {e}")
    if external:
        if any("srcdoc" in e and "jsdelivr" in e for e in external):
            say(PYVIS_HINT)
        if not args.allow_external:
            failures.append(f"{len(external)} resource(s) from other hosts (would not load offline)")
    else:
        say(f"no page loads anything from another host ({sum(1 for _ in html_dir.rglob('*.html'))} pages scanned)")

    server, base = serve(html_dir)
    try:
        for page, req in pages:
            if not (html_dir / page).is_file():
                failures.append(f"{page}: not in the built site {html_dir}")
                say(f"FAIL {page}: no such page")
                continue
            t0 = time.perf_counter()
            try:
                res = inspect_page(base, page, args.budget_ms, args.timeout)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                failures.append(f"{page}: {e}")
                say(f"FAIL {page}: {e}")
                continue
            shot = shots / (page.removesuffix(".html").replace("/", "__") + ".png")
            shot_ok = screenshot(base, page, shot, args.window_size, args.budget_ms, args.timeout)
            fails = verdict(res, req)
            failures += [f"{page}: {f}" for f in fails]
            summary = (f"{res.get('images_loaded', 0)} figure(s), {res.get('tables', 0)} table(s), "
                       f"{len(res.get('pyvis', []))} graph(s), {res.get('mjx_containers', 0)} typeset math "
                       f"(MathJax {res.get('mathjax_version')})"
                       + (f" [required: {', '.join(req)}]" if req else ""))
            counts.append((page, res.get("images_loaded", 0), res.get("tables", 0), len(res.get("pyvis", []))))
            say(f"{'ok  ' if not fails else 'FAIL'} {page}: {summary} in {time.perf_counter() - t0:.1f} s; "
                f"screenshot {shot if shot_ok else 'FAILED'}")
            for f in fails:
                say(f"     {f}")
            for key, what in (("code_cut_off", "code cell(s) with lines cut off at the right edge"),
                              ("raw_dataframes", "raw DataFrame table(s) (use lumina.tables.show_table)"),
                              ("nan_cells", "table cell(s) reading NaN/None")):
                if res.get(key):
                    say(f"     WARNING: {res[key]} {what}")
    finally:
        server.shutdown()

    missing = sorted({p for p, code in _Handler.log if code == 404 and not p.startswith("/favicon.ico")})
    for p in missing:
        failures.append(f"404 from the local server: {p}")
        say(f"FAIL: 404 {p}")
    say("page | figures | tables | graphs")
    for page, n_fig, n_tab, n_graph in counts:
        say(f"{page.removesuffix('.html')} | {n_fig} | {n_tab} | {n_graph}")
    if failures:
        say(f"{len(failures)} problem(s):")
        for f in failures:
            print(f"  - {f}", file=sys.stderr)
        return 1
    say(f"all checks passed ({len(pages)} page(s)); screenshots in {shots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
