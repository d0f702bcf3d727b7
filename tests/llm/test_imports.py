"""darec.llm imports its optional dependencies only when a backend is built."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

LLM = Path(__file__).resolve().parents[2] / "darec" / "llm"
OPTIONAL = {"transformers", "openai", "peft", "trl", "gguf", "tokenizers", "accelerate", "vllm"}


def test_no_module_of_darec_llm_imports_an_optional_package_at_import_time():
    found = []
    for path in sorted(LLM.glob("*.py")):
        for node in ast.parse(path.read_text()).body:  # module-level statements only
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            found += [f"{path.name}:{node.lineno} {name}" for name in names if name.split(".")[0] in OPTIONAL]
    assert found == []


def test_darec_llm_imports_without_the_llm_extra():
    blocked = sorted(OPTIONAL - {"transformers", "tokenizers"})  # darec's other dependencies bring those two
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "import darec.llm\n"
        "from darec.llm import FakeLLM, OpenAICompatible\n"
        "assert FakeLLM(['ok']).generate(['hi']) == ['ok']\n"
        "try:\n"
        "    OpenAICompatible('m', base_url='http://localhost:1/v1')\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'pip install "darec[llm]"' in result.stdout
