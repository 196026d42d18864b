#!/usr/bin/env python3
"""Builds the real-text part of the scale corpus from Debian packages, as BEIR corpus JSONL
({"_id", "title", "text", "source"}), plus a file of real query texts. Standard library only
(groff renders man pages, Debian's `bible` program prints the KJV text, apt-helper decompresses
apt's lists).

The packages are unpacked (not installed: dict-gcide would pull in the dictd server) into a
private root, and the long package descriptions come from a private apt list directory:

    mkdir -p /work/scale/debs && cd /work/scale/debs && apt-get download wordnet-base dict-gcide \
        dict-foldoc dict-jargon dict-vera dict-devil dict-elements fortunes fortunes-min \
        bible-kjv bible-kjv-text manpages manpages-dev perl-doc python3.11-doc \
        debian-reference-en debian-handbook gnu-standards linux-doc-6.1
    for f in /work/scale/debs/*.deb; do dpkg-deb -x "$f" /work/scale/root; done
    mkdir -p /work/scale/apt-lists/partial && apt-get update -o Dir::State::Lists=/work/scale/apt-lists \
        -o Acquire::Languages=en
    tools/scale/build_corpus.py --root /work/scale/root --apt-lists /work/scale/apt-lists --out /work/scale/corpus

Writes OUT/corpus.jsonl, OUT/queries.jsonl ({"_id", "text", "source"}) and OUT/stats.json.

Passages: every source yields "documents" (a dictionary entry, a man page section, a section of a
manual, a package description, a Bible chapter, a fortune) made of paragraphs; paragraphs are
packed greedily into passages of at most --max-words words (long paragraphs are cut at sentence
ends), passages shorter than --min-words are merged with their neighbour inside the same document
or dropped. Dictionary entries are kept from --min-words-entry words on (glosses are short by
nature). Paragraphs that look like code, tables or ASCII art (too few alphabetic words) are
dropped. Passages are deduplicated on their normalised text (lower case, letters and digits only);
the first occurrence in source order wins. Ids are "<source>:<locator>:<n>", stable for the same
package versions.
"""
import argparse, glob, gzip, hashlib, html.parser, json, os, random, re, subprocess, sys
from concurrent.futures import ThreadPoolExecutor

WORD = re.compile(r"\S+")
ALPHA_WORD = re.compile(r"^[\"'(\[]*[A-Za-z][A-Za-z'\-]*[.,;:!?)\]\"']*$")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def words(s):
    return WORD.findall(s)


def prose_like(par, min_ratio=0.6):
    """True when most whitespace-separated tokens are ordinary words (not code, tables, art)."""
    ws = words(par)
    if not ws:
        return False
    return sum(1 for w in ws if ALPHA_WORD.match(w)) / len(ws) >= min_ratio


def split_long(par, max_words):
    """Cuts a paragraph longer than max_words at sentence ends (hard cut when a sentence is longer)."""
    if len(words(par)) <= max_words:
        return [par]
    out, cur, n = [], [], 0
    for sent in SENTENCE_END.split(par):
        sw = words(sent)
        while len(sw) > max_words:  # a run-on sentence: hard cut
            if cur:
                out.append(" ".join(cur)); cur, n = [], 0
            out.append(" ".join(sw[:max_words])); sw = sw[max_words:]
        if n + len(sw) > max_words and cur:
            out.append(" ".join(cur)); cur, n = [], 0
        cur.append(" ".join(sw)); n += len(sw)
    if cur:
        out.append(" ".join(cur))
    return out


def pack(paragraphs, max_words, min_words):
    """Greedy packing of paragraphs into passages of <= max_words; a short tail joins the previous."""
    pieces = []
    for p in paragraphs:
        p = " ".join(p.split())
        if p:
            pieces += split_long(p, max_words)
    out, cur, n = [], [], 0
    for p in pieces:
        k = len(words(p))
        if cur and n + k > max_words:
            out.append(" ".join(cur)); cur, n = [], 0
        cur.append(p); n += k
    if cur:
        tail = " ".join(cur)
        if out and n < min_words and len(words(out[-1])) + n <= max_words * 1.25:
            out[-1] += " " + tail
        else:
            out.append(tail)
    return [p for p in out if len(words(p)) >= min_words]


# ---------------------------------------------------------------- sources
# Each source is a generator of (locator, title, [paragraphs], kind) with kind "entry" (dictionary
# entry: short passages allowed) or "doc".

def src_wordnet(root):
    d = os.path.join(root, "usr/share/wordnet")
    for pos, tag in (("noun", "n"), ("verb", "v"), ("adj", "a"), ("adv", "r")):
        with open(os.path.join(d, "data." + pos), encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  "):
                    continue
                head, _, gloss = line.partition(" | ")
                fields = head.split()
                count = int(fields[3], 16)
                ws = [fields[4 + 2 * i].replace("_", " ").split("(")[0] for i in range(count)]
                yield tag + fields[0], ", ".join(ws), [gloss.strip()], "entry"


B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def b64(s):
    v = 0
    for c in s:
        v = v * 64 + B64[c]
    return v


def dictd_entries(root, name):
    """(headword, body) of a dictd database, once per stored entry, in file order."""
    d = os.path.join(root, "usr/share/dictd")
    data = gzip.open(os.path.join(d, name + ".dict.dz")).read()
    seen, rows = set(), []
    with open(os.path.join(d, name + ".index"), encoding="utf-8", errors="replace") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0].startswith("00") or parts[0].startswith("00-"):
                continue
            off, n = b64(parts[1]), b64(parts[2])
            if off in seen:
                continue
            seen.add(off)
            rows.append((off, n, parts[0]))
    rows.sort()
    for off, n, head in rows:
        yield off, head, data[off:off + n].decode("utf-8", errors="replace")


def paragraphs_of(body):
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", body) if p.strip()]


def src_gcide(root):
    for off, head, body in dictd_entries(root, "gcide"):
        body = re.sub(r"\[(1913 Webster|WordNet 1\.5|PJC|Century Dict\.|Webster 1913 Suppl\.|[^\]]{0,40}Webster[^\]]{0,20})\]", " ", body)
        lines = body.split("\n")
        # First line: "Allocate \Al"lo*cate\, v. t. [etymology]" -> keep the headword out of the
        # text (it is the title) and the pronunciation out altogether.
        first = re.sub(r"\\[^\\]*\\,?", " ", lines[0])
        first = first.split(None, 1)[1] if len(first.split(None, 1)) > 1 else ""
        text = "\n".join([first] + lines[1:])
        text = re.sub(r"\\[^\\\n]*\\,?", " ", text)                      # other pronunciations
        text = re.sub(r"\([^()]*[\^*`][^()]*\)", " ", text)                # (ap*p[o^]k...) markup
        text = text.replace("{", "").replace("}", "").replace("--", " -- ")
        text = re.sub(r"\s+--\s+(?=[A-Z][\w.]*\.?\s*$)", " ", text)  # trailing author cites
        title = lines[0].split("\\")[0].strip() or head
        yield str(off), title, paragraphs_of(text), "entry"


def src_dictd_simple(root, name):
    for off, head, body in dictd_entries(root, name):
        lines = body.strip("\n").split("\n")
        title = lines[0].strip() or head
        text = "\n".join(lines[1:]).replace("{", "").replace("}", "")
        text = re.sub(r"<(https?://[^>]+)>", r"\1", text)
        yield str(off), title, paragraphs_of(text), "entry"


def src_fortunes(root):
    for path in sorted(glob.glob(os.path.join(root, "usr/share/games/fortunes/*"))):
        if path.endswith((".dat", ".u8")) or os.path.islink(path):
            continue
        base = os.path.basename(path)
        text = open(path, encoding="utf-8", errors="replace").read()
        for i, f in enumerate(re.split(r"\n%\n", text)):
            f = f.strip("%\n")
            if f.strip():
                yield "%s/%d" % (base, i), "", [" ".join(f.split())], "entry"


def src_bible(root):
    exe = os.path.join(root, "usr/bin/bible")
    out = subprocess.run([exe, "-l10000", "-p", os.path.join(root, "usr/lib"), "gen1:1-rev22:21"],
                         capture_output=True, text=True, check=True).stdout
    chapter, verses = None, []
    for line in out.split("\n") + ["<end>"]:
        m = re.match(r"^\s+(\d+) (.*)$", line)
        if m:
            verses.append(m.group(2))
        elif line.strip():
            if chapter and verses:
                yield chapter.replace(" ", "_"), chapter, verses, "doc"
            chapter, verses = line.strip(), []


def apt_cat(path):
    return subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", path], capture_output=True, check=True).stdout.decode("utf-8", "replace")


def src_debian_packages(apt_lists):
    seen = set()
    for path in sorted(glob.glob(os.path.join(apt_lists, "*Translation-en*"))):
        for stanza in apt_cat(path).split("\n\n"):
            pkg = md5 = None
            desc = []
            in_desc = False
            for line in stanza.split("\n"):
                if line.startswith("Package:"):
                    pkg = line.split(":", 1)[1].strip()
                elif line.startswith("Description-md5:"):
                    md5 = line.split(":", 1)[1].strip()
                elif line.startswith("Description-en:"):
                    desc = [line.split(":", 1)[1].strip()]; in_desc = True
                elif in_desc and line.startswith(" "):
                    desc.append(line[1:])
                else:
                    in_desc = False
            if not pkg or not desc or md5 in seen:
                continue
            seen.add(md5)
            body = "\n".join("" if l.strip() == "." else l for l in desc[1:])
            pars = [p for p in paragraphs_of(body) if prose_like(p, 0.5)]
            yield pkg, "%s: %s" % (pkg, desc[0]), pars, "doc"


def render_man(path):
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    if raw.lstrip().startswith(b".so ") or len(raw) < 200:
        return None  # an alias of another page
    r = subprocess.run(["groff", "-t", "-man", "-Tutf8", "-P-cbou", "-Ww", "-rLL=1000n", "-rHY=0"],
                       input=raw, capture_output=True)
    return r.stdout.decode("utf-8", "replace")


def man_sections(text):
    """(heading, [paragraphs]) of a rendered man page; headings are unindented upper-case lines."""
    sec, pars, cur = None, [], []
    for line in text.split("\n"):
        if line and not line[0].isspace():
            if cur:
                pars.append(" ".join(cur)); cur = []
            if sec is not None and pars:
                yield sec, pars
            sec, pars = line.strip(), []
        elif not line.strip():
            if cur:
                pars.append(" ".join(cur)); cur = []
        else:
            cur.append(line.strip())
    if cur:
        pars.append(" ".join(cur))
    if sec is not None and pars:
        yield sec, pars


def src_man(root, perl):
    paths = sorted(glob.glob(os.path.join(root, "usr/share/man/man*/*")))
    is_perl = lambda p: bool(re.search(r"\.3perl(\.gz)?$|/man1/perl[^/]*\.1(\.gz)?$", p))
    paths = [p for p in paths if is_perl(p) == perl and not os.path.islink(p)]  # symlinks: aliases
    with ThreadPoolExecutor(2) as ex:
        for path, text in zip(paths, ex.map(render_man, paths)):
            if not text:
                continue
            name = re.sub(r"\.gz$", "", os.path.basename(path))
            for i, (sec, pars) in enumerate(man_sections(text)):
                if i == 0 or sec.upper().startswith(("SEE ALSO", "COLOPHON", "AUTHOR", "COPYRIGHT", "SYNOPSIS", "LICENSE")):
                    continue  # the header line, and sections that are lists rather than prose
                pars = [p for p in pars if prose_like(p)]
                if pars:
                    yield "%s/%d" % (name, i), "%s: %s" % (name, sec.title()), pars, "doc"


RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+.:_])\1{2,}\s*$")


def rst_clean(s):
    s = re.sub(r":[\w:.+-]+:`~?!?([^`<]*?)(\s*<[^>]*>)?`", r"\1", s)   # :role:`text <target>`
    s = re.sub(r"`([^`<]+?)\s*<[^>]+>`_{1,2}", r"\1", s)               # `text <url>`_
    s = re.sub(r"``([^`]+)``", r"\1", s)
    s = re.sub(r"`([^`]+)`_{0,2}", r"\1", s)
    s = re.sub(r"\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*", lambda m: m.group(1) or m.group(2), s)
    s = re.sub(r"\[#?\w*\]_|\|(\w[\w -]*)\|", lambda m: m.group(1) or "", s)
    return s


def rst_sections(text, doc_title):
    """(section title, [paragraphs]) of a reStructuredText source, without literal blocks,
    code directives, tables, comments and directive options."""
    lines = text.split("\n")
    sec, pars, cur = doc_title, [], []
    skip_indent = None  # skipping an indented block deeper than this
    i = 0
    def flush():
        nonlocal cur
        if cur:
            pars.append(" ".join(cur)); cur = []
    while i < len(lines):
        line = lines[i].rstrip()
        ind = len(line) - len(line.lstrip())
        if skip_indent is not None:
            if not line.strip() or ind > skip_indent:
                i += 1; continue
            skip_indent = None
        if i + 1 < len(lines) and line.strip() and RST_UNDERLINE.match(lines[i + 1]) and len(lines[i + 1].strip()) >= len(line.strip()) - 2:
            flush()
            if pars:
                yield sec, pars
            sec, pars = line.strip(), []
            i += 2; continue
        if RST_UNDERLINE.match(line):  # overlines, transitions
            i += 1; continue
        s = line.strip()
        if s.startswith(".. "):
            flush()
            m = re.match(r"\.\.\s+([\w:-]+)::\s*(.*)", s)
            name = m.group(1) if m else ""
            if not m or name in ("code-block", "code", "sourcecode", "literalinclude", "doctest", "testcode", "testoutput",
                                  "productionlist", "toctree", "image", "figure", "csv-table", "list-table", "table", "math",
                                  "kernel-doc", "include", "raw", "only", "highlight", "index", "graphviz", "kernel-abi",
                                  "kernel-feat", "kernel-include", "flat-table", "tabularcolumns", "cssclass", "c:macro",
                                  "c:function", "c:type", "c:member", "c:var", "opcodetable", "audit-event", "program"):
                skip_indent = ind
            elif m and m.group(2) and name in ("note", "warning", "tip", "important", "attention", "caution", "hint", "seealso"):
                cur.append(m.group(2))
            i += 1; continue
        if s.startswith(":") and re.match(r"^:[\w -]+:", s) and not cur:
            i += 1; continue  # field lists / directive options
        if s.startswith(("+-", "|", "==")) or (s.startswith(">>>") or s.startswith("$ ") or s.startswith("# ")):
            flush(); i += 1; continue
        if not s:
            flush(); i += 1; continue
        cur.append(s)
        if s.endswith("::"):
            cur[-1] = s[:-2] + (":" if not s[:-2].endswith((" ", ":")) else "")
            flush()
            skip_indent = ind
        i += 1
    flush()
    if pars:
        yield sec, pars


def src_rst(root, pattern):
    for path in sorted(glob.glob(os.path.join(root, pattern), recursive=True)):
        rel = path.split("_sources/", 1)[-1]
        text = open(path, encoding="utf-8", errors="replace").read()
        doc_title = rel.replace(".rst.txt", "").replace(".txt", "")
        for i, (sec, pars) in enumerate(rst_sections(text, doc_title)):
            pars = [rst_clean(p) for p in pars]
            pars = [p for p in pars if prose_like(p) and not re.match(r"^[-*] ?\S+$", p)]
            if pars:
                title = rst_clean(sec).replace(" --- ", " - ")
                yield "%s/%d" % (rel, i), title, pars, "doc"


class HTMLText(html.parser.HTMLParser):
    """Paragraph texts (p, li, dd, dt, td, blockquote) and the h1-h4 they fall under; pre, script,
    style and navigation are skipped."""
    BLOCK = {"p", "li", "dd", "dt", "td", "blockquote", "div"}
    SKIP = {"pre", "script", "style", "code_block", "head", "nav"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections, self.heading, self.buf, self.skip, self.in_head = [], "", [], 0, False
        self.pars, self.divs = [], []

    def flush(self):
        t = " ".join("".join(self.buf).split())
        self.buf = []
        if t:
            self.pars.append(t)

    def handle_starttag(self, tag, attrs):
        cls = dict(attrs).get("class") or ""
        if tag == "div":
            nav = "navheader" in cls or "navfooter" in cls or "toc" in cls.split()
            self.divs.append(nav)
            if nav:
                self.skip += 1
                return
        if tag in self.SKIP:
            self.skip += 1
        elif tag in ("h1", "h2", "h3", "h4"):
            self.flush()
            if self.pars:
                self.sections.append((self.heading, self.pars)); self.pars = []
            self.in_head = True
        elif tag in self.BLOCK or tag == "br":
            self.flush()

    def handle_endtag(self, tag):
        if tag == "div" and self.divs and self.divs.pop():
            self.skip = max(0, self.skip - 1)
            return
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in ("h1", "h2", "h3", "h4"):
            self.heading = " ".join("".join(self.buf).split())
            self.buf = []; self.in_head = False
        elif tag in self.BLOCK:
            self.flush()

    def handle_data(self, data):
        if not self.skip:
            self.buf.append(data)

    def close(self):
        super().close()
        self.flush()
        if self.pars:
            self.sections.append((self.heading, self.pars))


def src_html(root, pattern):
    for path in sorted(glob.glob(os.path.join(root, pattern), recursive=True)):
        rel = os.path.relpath(path, root)
        p = HTMLText()
        p.feed(open(path, encoding="utf-8", errors="replace").read())
        p.close()
        for i, (head, pars) in enumerate(p.sections):
            pars = [x for x in pars if prose_like(x) and len(words(x)) >= 4]
            if pars:
                yield "%s/%d" % (os.path.basename(rel), i), head, pars, "doc"


def src_info(root, names):
    for name in names:
        path = os.path.join(root, "usr/share/info", name + ".info.gz")
        text = gzip.open(path).read().decode("utf-8", "replace")
        for k, node in enumerate(text.split("\x1f")):
            lines = node.strip("\n").split("\n")
            if not lines or not lines[0].startswith("File:"):
                continue
            m = re.search(r"Node: ([^,]+)", lines[0])
            body = "\n".join(lines[1:]).split("* Menu:")[0]
            pars = [p for p in paragraphs_of(body) if prose_like(p) and not RST_UNDERLINE.match(p)]
            pars = [re.sub(r"^(.*)\s[*=\-.]{4,}$", r"\1", p) for p in pars]
            if pars:
                yield "%s/%d" % (name, k), m.group(1) if m else name, pars, "doc"


def sources(root, apt_lists):
    """Source name -> generator, in the order the corpus is written (dedup keeps the first)."""
    return [
        ("wordnet", lambda: src_wordnet(root)),
        ("gcide", lambda: src_gcide(root)),
        ("foldoc", lambda: src_dictd_simple(root, "foldoc")),
        ("jargon", lambda: src_dictd_simple(root, "jargon")),
        ("vera", lambda: src_dictd_simple(root, "vera")),
        ("devil", lambda: src_dictd_simple(root, "devil")),
        ("elements", lambda: src_dictd_simple(root, "elements")),
        ("fortunes", lambda: src_fortunes(root)),
        ("kjv", lambda: src_bible(root)),
        ("debian-packages", lambda: src_debian_packages(apt_lists)),
        ("man", lambda: src_man(root, perl=False)),
        ("perldoc", lambda: src_man(root, perl=True)),
        ("python-docs", lambda: src_rst(root, "usr/share/doc/python3.11/html/_sources/**/*.txt")),
        ("linux-docs", lambda: src_rst(root, "usr/share/doc/linux-doc-6.1/html/_sources/**/*.txt")),
        ("debian-handbook", lambda: src_html(root, "usr/share/doc/debian-handbook/html/en-US/*.html")),
        ("debian-reference", lambda: src_html(root, "usr/share/debian-reference/*.en.html")),
        ("gnu-standards", lambda: src_info(root, ["standards", "maintain"])),
    ]


def norm_key(text):
    return hashlib.sha1(re.sub(r"[^a-z0-9]+", " ", text.lower()).strip().encode()).digest()[:12]


def build_queries(root, shared, rng_seed, n_headwords):
    """Real query texts: the judged test queries of ../shared/data/*, the FAQ questions of the
    Perl and Python manuals (section headings that are questions; their answers are in the
    corpus), and a seeded sample of FOLDOC headwords (dictionary look-ups)."""
    out = []
    for q in sorted(glob.glob(os.path.join(shared, "data/*/queries.jsonl"))):
        name = os.path.basename(os.path.dirname(q))
        for line in open(q):
            if line.strip():
                d = json.loads(line)
                out.append({"_id": "%s:%s" % (name, d["_id"]), "text": d["text"], "source": name})
    for path in sorted(glob.glob(os.path.join(root, "usr/share/perl/*/pod/perlfaq[1-9].pod"))):
        base = os.path.basename(path)[:-4]
        for i, line in enumerate(open(path, encoding="utf-8", errors="replace")):
            m = re.match(r"^=head2\s+(.*\?)\s*$", line)
            if m:
                out.append({"_id": "perlfaq:%s:%d" % (base, i), "text": rst_clean(re.sub(r"[A-Z]<+([^>]*)>+", r"\1", m.group(1))), "source": "perlfaq"})
    for path in sorted(glob.glob(os.path.join(root, "usr/share/doc/python3.11/html/_sources/faq/*.txt"))):
        base = os.path.basename(path).split(".")[0]
        lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
        for i, (a, b) in enumerate(zip(lines, lines[1:])):
            if a.strip().endswith("?") and RST_UNDERLINE.match(b.strip()):
                out.append({"_id": "pythonfaq:%s:%d" % (base, i), "text": rst_clean(a.strip()), "source": "pythonfaq"})
    heads = sorted({h for _, h, _ in dictd_entries(root, "foldoc")
                    if re.fullmatch(r"[a-z][a-z \-]{3,40}", h) and len(h.split()) <= 4})
    for h in random.Random(rng_seed).sample(heads, min(n_headwords, len(heads))):
        out.append({"_id": "foldoc-headword:%s" % h.replace(" ", "_"), "text": h, "source": "foldoc-headword"})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default="/work/scale/root", help="where the .deb files were unpacked (or / when installed)")
    ap.add_argument("--apt-lists", default="/work/scale/apt-lists", help="apt list directory with Translation-en files")
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared"))
    ap.add_argument("--out", default="/work/scale/corpus")
    ap.add_argument("--max-words", type=int, default=150)
    ap.add_argument("--min-words", type=int, default=20, help="shortest passage of a document source")
    ap.add_argument("--min-words-entry", type=int, default=5, help="shortest passage of a dictionary entry (title + text)")
    ap.add_argument("--only", help="comma-separated source names (for a quick look)")
    ap.add_argument("--headword-queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    seen, ids = set(), set()
    stats = {}
    only = set(args.only.split(",")) if args.only else None
    with open(os.path.join(args.out, "corpus.jsonl.partial"), "w", encoding="utf-8") as out:
        for name, gen in sources(args.root, args.apt_lists):
            if only and name not in only:
                continue
            st = {"documents": 0, "passages": 0, "duplicates": 0, "words": 0}
            for loc, title, pars, kind in gen():
                st["documents"] += 1
                tw = len(words(title))
                if kind == "entry":
                    passages = pack(pars, args.max_words, 1)
                    passages = [p for p in passages if len(words(p)) + tw >= args.min_words_entry]
                else:
                    passages = pack(pars, args.max_words, args.min_words)
                for n, text in enumerate(passages):
                    key = norm_key(text)
                    if key in seen:
                        st["duplicates"] += 1
                        continue
                    seen.add(key)
                    _id = "%s:%s:%d" % (name, re.sub(r"\s+", "_", loc), n)
                    while _id in ids:
                        _id += "+"
                    ids.add(_id)
                    out.write(json.dumps({"_id": _id, "title": title, "text": text, "source": name}, ensure_ascii=False) + "\n")
                    st["passages"] += 1
                    st["words"] += len(words(text)) + tw
            st["mean_words"] = round(st["words"] / max(1, st["passages"]), 1)
            stats[name] = st
            print("%-18s %8d documents %8d passages %7d duplicates  %6.1f words/passage" %
                  (name, st["documents"], st["passages"], st["duplicates"], st["mean_words"]), file=sys.stderr, flush=True)
    os.replace(os.path.join(args.out, "corpus.jsonl.partial"), os.path.join(args.out, "corpus.jsonl"))
    queries = build_queries(args.root, args.shared, args.seed, args.headword_queries)
    with open(os.path.join(args.out, "queries.jsonl"), "w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    qstats = {}
    for q in queries:
        qstats[q["source"]] = qstats.get(q["source"], 0) + 1
    total = sum(s["passages"] for s in stats.values())
    json.dump({"sources": stats, "passages": total, "queries": qstats}, open(os.path.join(args.out, "stats.json"), "w"), indent=1)
    print("total %d passages; queries %s" % (total, qstats), file=sys.stderr)


if __name__ == "__main__":
    main()
