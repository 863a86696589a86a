"""A retrieval corpus of real projects no one here wrote: the GitHub projects Debian packages.

  debian_corpus.py OUT_DIR

Reads Debian's package index (`apt-cache dumpavail`) and its English descriptions
(Translation-en; `bench/retrieval` fetches it with `apt-get update -o Acquire::Languages=en`),
keeps each package whose Homepage is a GitHub repository (one record per repository: the
package whose name is closest to it), and writes:

  OUT_DIR/stars.json    GitHub's starred format (what `embed-star import` reads): the repository's
                        owner and name from the homepage, Debian's one-line description, a
                        language from the package's section
  OUT_DIR/queries.json  queries of the kinds people type, each with the repository it should find:
                          name        the repository's name as written (only names that are unique
                                      in the corpus)
                          name-part   the most distinctive part of a name with several parts
                          paraphrase  the first sentence of Debian's long description: the same
                                      project described by other words than the indexed line
                        and a `split` per query, `tune` or `heldout` (by a hash of the query), so
                        weights can be chosen on one half and reported on the other.
"""
import glob
import hashlib
import json
import os
import re
import subprocess
import sys

SECTION_LANGUAGES = {
    "python": "Python", "golang": "Go", "rust": "Rust", "ruby": "Ruby", "javascript": "JavaScript",
    "haskell": "Haskell", "perl": "Perl", "ocaml": "OCaml", "php": "PHP", "java": "Java", "gnu-r": "R",
    "lisp": "Lisp", "interpreters": None,
}
HOMEPAGE = re.compile(r"^https?://(?:www\.)?github\.com/([A-Za-z0-9][A-Za-z0-9-]*)/([A-Za-z0-9._-]+?)(?:\.git)?/?(?:[#?].*)?$")


def stanzas(text):
    for block in text.split("\n\n"):
        fields, key = {}, None
        for line in block.split("\n"):
            if line.startswith(" ") and key:
                fields[key] += "\n" + line[1:]
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def long_descriptions():
    out = {}
    for path in glob.glob("/var/lib/apt/lists/*_main_i18n_Translation-en*"):
        text = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", path], capture_output=True, text=True, check=True).stdout
        for fields in stanzas(text):
            if "Package" in fields and "Description-en" in fields:
                out[fields["Package"]] = fields["Description-en"]
    return out


def first_sentence(long_text):
    body = " ".join(line for line in long_text.split("\n")[1:] if line.strip() and line.strip() != ".")
    body = re.sub(r"\s+", " ", body).strip()
    match = re.match(r"(.{30,300}?[.!?])(\s|$)", body)
    return match.group(1) if match else None


def split(query):
    return "tune" if int(hashlib.sha256(query.encode()).hexdigest(), 16) % 2 == 0 else "heldout"


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    index = subprocess.run(["apt-cache", "dumpavail"], capture_output=True, text=True, check=True).stdout
    longs = long_descriptions()
    repos = {}
    for fields in stanzas(index):
        match = HOMEPAGE.match(fields.get("Homepage", ""))
        if not match or not fields.get("Description"):
            continue
        owner, name = match.group(1), match.group(2)
        key = (owner.lower(), name.lower())
        package = fields["Package"]
        # The package whose name is closest to the repository's (python3-foo over foo-doc).
        closeness = (name.lower() not in package.lower(), package.endswith(("-doc", "-dev", "-dbg")), len(package))
        if key in repos and repos[key]["closeness"] <= closeness:
            continue
        section = fields.get("Section", "").split("/")[-1]
        repos[key] = {"closeness": closeness, "owner": owner, "name": name, "package": package,
                      "description": re.sub(r"\s*\((Python 3|Python 2|library|documentation)\)$", "", fields["Description"]),
                      "language": SECTION_LANGUAGES.get(section), "long": longs.get(package)}
    ordered = sorted(repos.values(), key=lambda r: (r["owner"].lower(), r["name"].lower()))
    stars = []
    for number, repo in enumerate(ordered, start=1):
        stars.append({"id": number, "name": repo["name"], "full_name": "%s/%s" % (repo["owner"], repo["name"]),
                      "owner": {"login": repo["owner"]}, "description": repo["description"], "language": repo["language"],
                      "html_url": "https://github.com/%s/%s" % (repo["owner"], repo["name"]), "stargazers_count": 0,
                      "topics": [], "private": False})
    with open(os.path.join(out_dir, "stars.json"), "w") as f:
        json.dump(stars, f)

    names = {}
    for star in stars:
        names.setdefault(star["name"].lower(), []).append(star)
    parts = {}
    for star in stars:
        for part in set(re.split(r"[-_.]", star["name"].lower())):
            parts.setdefault(part, set()).add(star["full_name"])
    queries = []
    for star, repo in zip(stars, ordered):
        expect = star["full_name"]
        if len(names[star["name"].lower()]) == 1:
            queries.append({"kind": "name", "query": star["name"], "expect": expect})
        pieces = [p for p in re.split(r"[-_.]", star["name"]) if len(p) >= 4]
        if len(pieces) >= 2:
            # The part fewest other repositories' names share, when it names this one alone.
            best = min(pieces, key=lambda p: (len(parts.get(p.lower(), ())), -len(p)))
            if len(parts.get(best.lower(), ())) == 1:
                queries.append({"kind": "name-part", "query": best, "expect": expect})
        sentence = first_sentence(repo["long"]) if repo["long"] else None
        if sentence and repo["name"].lower() not in sentence.lower():
            queries.append({"kind": "paraphrase", "query": sentence, "expect": expect})
    for query in queries:
        query["split"] = split(query["query"])
    with open(os.path.join(out_dir, "queries.json"), "w") as f:
        json.dump(queries, f, indent=0)
    kinds = {}
    for query in queries:
        kinds[query["kind"]] = kinds.get(query["kind"], 0) + 1
    print("%d repositories, %d queries %s -> %s" % (len(stars), len(queries), kinds, out_dir), file=sys.stderr)


main()
