"""Persona loading and rendering speed.

Prints the median time to load the built-in folder, to load 100 personas, and to render the
Builder's prompt and title after loading. Targets: under 1 ms per render, under 50 ms per 100 loads.

    .venv/bin/python bench/render.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from personabot.personas import (
    build_context,
    builtin_dir,
    load_folders,
    load_personas,
    read_folder,
    render_prompt,
    render_title,
)


def median_ms(function: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    builtin_files = read_folder(builtin_dir())
    builder_text = builtin_files["builder.md"]
    hundred = {
        f"p{i:03d}.md": builder_text.replace("id: builder", f"id: p{i:03d}", 1) for i in range(100)
    }
    hundred.update({path: text for path, text in builtin_files.items() if "/" in path})

    load_builtin = median_ms(lambda: load_folders([("builtin", builtin_dir())]), 50)
    load_hundred = median_ms(lambda: load_personas([("bench", hundred)]), 20)

    personas = load_folders([("builtin", builtin_dir())])
    builder = personas.get("builder")
    context = build_context(builder, repo_full="OWNER/NAME", run_id="bench")
    start = time.perf_counter()
    render_prompt(builder, personas, context)  # compiles the body, partials and title once
    first = (time.perf_counter() - start) * 1000
    render = median_ms(lambda: render_prompt(builder, personas, context), 500)
    title = median_ms(lambda: render_title(builder, personas, context), 500)

    print(f"load built-in folder (disk)      {load_builtin:8.3f} ms")
    print(f"load 100 personas (texts)        {load_hundred:8.3f} ms   target < 50 ms")
    print(f"first render (compiles)          {first:8.3f} ms")
    print(f"render Builder prompt            {render:8.3f} ms   target < 1 ms")
    print(f"render Builder title             {title:8.3f} ms")


if __name__ == "__main__":
    main()
