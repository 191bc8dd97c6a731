"""A real agent for tests: does what the JSON file named by argv[1] says, in its working directory."""

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

spec = json.loads(Path(sys.argv[1]).read_text())
prompt = sys.stdin.read()
if "record_prompt" in spec:
    Path(spec["record_prompt"]).write_text(prompt)
if "dump_tree" in spec:  # every byte the agent can read in its working directory, .git included
    with open(spec["dump_tree"], "wb") as out:
        for folder, _, names in os.walk("."):
            for name in names:
                path = os.path.join(folder, name)
                if not os.path.islink(path):
                    out.write(path.encode() + b"\n" + Path(path).read_bytes() + b"\n")
if "dump_env" in spec:
    Path(spec["dump_env"]).write_text(json.dumps(dict(os.environ)))
for path, text in spec.get("write", {}).items():
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)
for path, data in spec.get("write_bytes", {}).items():
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(base64.b64decode(data))
for path in spec.get("delete", []):
    os.remove(path)
for path in spec.get("chmod_x", []):
    os.chmod(path, 0o755)
for path, target in spec.get("symlink", {}).items():
    os.symlink(target, path)
if "summary" in spec:
    Path(os.environ["PERSONABOT_SUMMARY_FILE"]).write_text(spec["summary"])
if "spawn_sleeper" in spec:
    code = f"import os,time; open({spec['spawn_sleeper']!r},'w').write(str(os.getpid())); time.sleep(600)"
    subprocess.Popen([sys.executable, "-c", code])
for line in spec.get("say", ["agent done"]):
    print(line, flush=True)
time.sleep(spec.get("sleep", 0))
sys.exit(spec.get("exit", 0))
