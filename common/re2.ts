// Regexes as Envoy reads them: RE2 syntax, run by a linear-time engine (re2js, a port of
// RE2/J), so no pattern and no hostile path can make matching backtrack. The control plane
// validates config regexes with this module and the sidecar evaluates them with it, so both
// accept and refuse exactly the same patterns.
import type { RE2JS } from 're2js';

// re2js is 260 KB of source, ~2 MB of a process once compiled; most sidecars are never sent a
// regex, so it is loaded by the first pattern compiled (~15 ms, at config load, never on a
// request: matching runs only on patterns compiled before).
let loaded: typeof RE2JS | undefined;
const re2js = (): typeof RE2JS => (loaded ??= (require('re2js') as typeof import('re2js')).RE2JS);

/**
 * Envoy refuses a regex whose compiled program is larger than re2.max_program_size; Istio's
 * bootstrap raises that limit to 32768, so Istio users' regexes are held to the same bound.
 */
export const MAX_PROGRAM_SIZE = 32768;

const SYNTAX_HELP = 'regexes are RE2 (https://github.com/google/re2/wiki/Syntax)';

export class Re2Error extends Error {
  override readonly name = 'Re2Error';
}

/** A substitution string parsed once: literal text and capture-group numbers, in order. */
export interface Substitution {
  readonly source: string;
  readonly parts: readonly (string | number)[];
}

export interface Re2 {
  readonly source: string;
  /** capturing groups in the pattern, not counting the whole match */
  readonly groupCount: number;
  /** Whether the whole of `s` matches, as Envoy's safe_regex matchers do (RE2::FullMatch). */
  test(s: string): boolean;
  /**
   * Every non-overlapping match in `s` replaced by `substitution`, as Envoy's
   * RegexMatchAndSubstitute does (RE2::GlobalReplace): `\0`..`\9` insert a capture group,
   * `\\` a backslash. A string substitution is parsed on each call; parse it once with
   * `substitution()` on a hot path.
   */
  replaceAll(s: string, substitution: string | Substitution): string;
  /** Parses and checks a substitution string against this pattern's groups. */
  substitution(text: string): Substitution;
}

/** Why RE2 refused the pattern, with a hint for the Perl/JavaScript habits it does not share. */
function explain(pattern: string, detail: string): string {
  let hint = SYNTAX_HELP;
  if (/`\(\?<?[=!]/.test(detail)) hint = `lookarounds are not RE2; ${SYNTAX_HELP}`;
  else if (/invalid escape sequence: `\\[1-9k]/.test(detail)) hint = `backreferences are not RE2; ${SYNTAX_HELP}`;
  return `invalid regex ${JSON.stringify(pattern)}: ${detail.replace(/^error parsing regexp: /, '')} (${hint})`;
}

export function compileRe2(pattern: string): Re2 {
  const engine = re2js(); // outside the try: a failure to load it is not the pattern's fault
  let re: RE2JS;
  try {
    re = engine.compile(pattern);
  } catch (e) {
    throw new Re2Error(explain(pattern, (e as Error).message), { cause: e });
  }
  const size = re.programSize();
  if (size > MAX_PROGRAM_SIZE) {
    throw new Re2Error(`regex ${JSON.stringify(pattern.length > 80 ? `${pattern.slice(0, 80)}...` : pattern)} is too large: its RE2 program size ${size} exceeds ${MAX_PROGRAM_SIZE}`);
  }
  return new CompiledRe2(re);
}

class CompiledRe2 implements Re2 {
  readonly source: string;
  readonly groupCount: number;

  constructor(private readonly re: RE2JS) {
    this.source = re.pattern();
    this.groupCount = re.groupCount();
  }

  test(s: string): boolean {
    return this.re.testExact(s);
  }

  substitution(text: string): Substitution {
    const parts: (string | number)[] = [];
    let literal = '';
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c !== '\\') {
        literal += c;
        continue;
      }
      const next = text[++i];
      if (next === '\\') literal += '\\';
      else if (next !== undefined && next >= '0' && next <= '9') {
        const group = Number(next);
        if (group > this.groupCount) {
          throw new Re2Error(`substitution ${JSON.stringify(text)} refers to group \\${group}, but ${JSON.stringify(this.source)} has ${this.groupCount} capture group${this.groupCount === 1 ? '' : 's'}`);
        }
        if (literal) parts.push(literal);
        literal = '';
        parts.push(group);
      } else {
        throw new Re2Error(`substitution ${JSON.stringify(text)}: a backslash must be followed by a group number 0-9 or another backslash (RE2's rewrite syntax)`);
      }
    }
    if (literal) parts.push(literal);
    return { source: text, parts };
  }

  replaceAll(s: string, substitution: string | Substitution): string {
    const sub = typeof substitution === 'string' ? this.substitution(substitution) : substitution;
    const m = this.re.matcher(s);
    let out = '';
    let p = 0;
    let lastEnd = -1;
    let count = 0;
    while (p <= s.length && m.find(p)) {
      const start = m.start();
      const end = m.end();
      if (p < start) out += s.slice(p, start);
      if (start === end && start === lastEnd) {
        // RE2 allows no empty match right where the previous match ended: copy one
        // character (a whole code point) and search on from after it.
        const n = (s.codePointAt(p) ?? 0) > 0xffff ? 2 : 1;
        out += s.slice(p, p + n);
        p += n;
        continue;
      }
      for (const part of sub.parts) out += typeof part === 'number' ? (m.group(part) ?? '') : part;
      p = lastEnd = end;
      count++;
    }
    if (count === 0) return s;
    return p < s.length ? out + s.slice(p) : out;
  }
}
