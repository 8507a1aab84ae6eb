"""The README and docs: every relative link resolves, every quick command runs.

Commands are the lines of fenced ```bash blocks (a trailing backslash continues a line).
A block preceded by `<!-- docs-test: skip (reason) -->` is not run (too slow for the
suite, or it needs data or a venv the suite does not have); the reason is required, and
such commands are checked by hand. Every other block runs from the repository root, each
command in a shell, and must exit 0. Commands in indented (4-space) blocks are not
allowed, so that none escapes this test.
"""

import glob
import os
import re
import subprocess
import sys
import tempfile

from absl.testing import absltest
from absl.testing import parameterized

import helpers

ROOT = helpers.ROOT
PAGES = sorted([os.path.join(ROOT, 'README.md'), os.path.join(ROOT, 'CONTRIBUTING.md'),
                os.path.join(ROOT, 'CHANGELOG.md')]
               + glob.glob(os.path.join(ROOT, 'docs', '*.md')))
SKIP_RE = re.compile(r'<!-- docs-test: skip \((.+)\) -->\s*$')
FENCE_RE = re.compile(r'^(\s*)```(\S*)\s*$')
LINK_RE = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')
COMMAND_START = ('python', 'pip', 'PYTHONPATH', 'pytest', 'tfds', 'bash', 'sbatch')


def blocks(path: str) -> list[tuple[int, str, list[str], str]]:
  """(line number, language, lines, skip reason or '') of each fenced block."""
  out, lines = [], open(path, encoding='utf-8').read().split('\n')
  i = 0
  while i < len(lines):
    m = FENCE_RE.match(lines[i])
    if m:  # (fences may be indented, inside a list item)
      indent, lang = m.groups()
      j = i + 1
      while not lines[j].strip().startswith('```'):
        j += 1
      before = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), '')
      skip = SKIP_RE.match(before.strip())
      if lang:
        body = [l[len(indent):] for l in lines[i + 1:j]]
        out.append((i + 1, lang, body, skip.group(1) if skip else ''))
      i = j
    i += 1
  return out


def commands(block_lines: list[str]) -> list[str]:
  """Shell commands of a block: backslash continuations joined, comments dropped."""
  out, current = [], ''
  for line in block_lines:
    line = line.rstrip()
    if not current and (not line or line.lstrip().startswith('#')):
      continue
    current += line[:-1] + ' ' if line.endswith('\\') else line
    if not line.endswith('\\'):
      out.append(current.strip())
      current = ''
  return out


def runnable() -> list[tuple[str, str]]:
  """(where, command) of every command the docs test runs."""
  found = []
  for page in PAGES:
    if not os.path.exists(page):
      continue
    for line, lang, body, skip in blocks(page):
      if lang in ('bash', 'sh') and not skip:
        for command in commands(body):
          found.append((f'{os.path.relpath(page, ROOT)}:{line}', command))
  return found


def slug(heading: str) -> str:
  """GitHub's anchor for a heading."""
  text = re.sub(r'[^\w\- ]', '', heading.strip().lower())
  return text.replace(' ', '-')


class DocsTest(parameterized.TestCase):

  def test_every_relative_link_resolves(self):
    bad = []
    for page in PAGES:
      if not os.path.exists(page):
        continue
      text = open(page, encoding='utf-8').read()
      for target in LINK_RE.findall(text):
        if re.match(r'^[a-z]+:', target):  # http(s), mailto: not checked offline
          continue
        path, _, anchor = target.partition('#')
        full = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        if not os.path.exists(full):
          bad.append(f'{os.path.relpath(page, ROOT)}: {target} (no such file)')
        elif anchor and full.endswith('.md'):
          headings = re.findall(r'^#+ (.+)$', open(full, encoding='utf-8').read(), re.M)
          if anchor not in {slug(h) for h in headings}:
            bad.append(f'{os.path.relpath(page, ROOT)}: {target} (no such heading)')
    self.assertEmpty(bad)

  def test_commands_are_in_fenced_blocks_and_skips_give_a_reason(self):
    bad = []
    for page in PAGES:
      if not os.path.exists(page):
        continue
      lines = open(page, encoding='utf-8').read().split('\n')
      fenced = False
      for n, line in enumerate(lines, 1):
        if line.strip().startswith('```'):
          fenced = not fenced
        elif not fenced and line.startswith('    ') and line.strip().startswith(
            COMMAND_START):
          bad.append(f'{os.path.relpath(page, ROOT)}:{n}: {line.strip()}')
        if line.startswith('<!-- docs-test') and not SKIP_RE.match(line.strip()):
          bad.append(f'{os.path.relpath(page, ROOT)}:{n}: malformed marker {line!r}')
    self.assertEmpty(bad, 'Put commands in ```bash blocks (and mark slow ones).')
    self.assertGreaterEqual(len(runnable()), 6)  # the quick ones are really run

  @parameterized.named_parameters(
      (re.sub(r'\W', '_', f'{where}_{i}'), where, command)
      for i, (where, command) in enumerate(runnable()))
  def test_command_runs(self, where, command):
    with tempfile.TemporaryDirectory(prefix='hyperproto_docs_') as cache:
      env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS='cpu', HYPERPROTO_CACHE=cache,
                 PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
      env.pop('XLA_FLAGS', None)
      result = subprocess.run(['bash', '-c', command], cwd=ROOT, env=env, timeout=300,
                              capture_output=True, text=True)
    self.assertEqual(result.returncode, 0, f'{where}: {command}\n{result.stderr[-3000:]}')


class ClaimsTest(absltest.TestCase):
  """Claims of the docs that a cheap look at the code can check."""

  def test_layout_names_every_module(self):
    text = open(os.path.join(ROOT, 'CONTRIBUTING.md'), encoding='utf-8').read()
    block = text.split('## Layout', 1)[1].split('```', 2)[1]
    listed = set(re.findall(r'^  (\w+(?:\.py|/))\s', block, re.M))
    package = os.path.join(ROOT, 'hyperproto')
    present = {n + '/' if os.path.isdir(os.path.join(package, n)) else n
               for n in os.listdir(package)
               if n.endswith('.py') and n != '__init__.py'
               or os.path.exists(os.path.join(package, n, '__init__.py'))}
    self.assertEqual(listed, present, 'CONTRIBUTING.md ## Layout vs hyperproto/')

  def test_device_test_count(self):
    text = open(os.path.join(ROOT, 'CONTRIBUTING.md'), encoding='utf-8').read()
    claimed = int(re.search(r'`@pytest.mark.device` \((\d+) tests today\)', text).group(1))
    env = dict(os.environ, PYTHONPATH=ROOT)
    done = subprocess.run(
        [sys.executable, '-m', 'pytest', '--collect-only', '-q', '-m', 'device',
         '-p', 'no:xdist', '-p', 'no:cacheprovider', '-o', 'addopts=', 'tests'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    collected = re.search(r'^(\d+)/\d+ tests collected', done.stdout, re.M)
    self.assertIsNotNone(collected, done.stdout[-2000:] + done.stderr[-2000:])
    self.assertEqual(int(collected.group(1)), claimed,
                     'CONTRIBUTING.md: the number of device tests')

  def test_gpu_check_sample_has_every_part_in_order(self):
    sys.path.insert(0, os.path.join(ROOT, 'experiments'))
    import gpu_check  # pylint: disable=g-import-not-at-top
    text = open(os.path.join(ROOT, 'docs', 'performance.md'), encoding='utf-8').read()
    sample = text.split('--allow_cpu: tiny sizes, not a measurement of anything).', 1)[1]
    rows = re.findall(r'^\| (\w+) \| (?:ok|failed|skipped)', sample, re.M)
    self.assertEqual(rows[:len(gpu_check.SHARES)], list(gpu_check.SHARES),
                     'docs/performance.md: the --allow_cpu sample table')

  def test_workdir_list_is_parsed(self):  # tests/train_test.py compares it with a run's
    self.assertContainsSubset({'config.json', 'metrics.jsonl', 'results.json',
                               'curves.png', 'prototypes.png'}, helpers.workdir_files())


if __name__ == '__main__':
  absltest.main()
