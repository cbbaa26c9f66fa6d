import { describe, expect, it } from 'vitest';
import { compileRe2, MAX_PROGRAM_SIZE, Re2Error } from './re2';

const refusal = (pattern: string): string => {
  try {
    compileRe2(pattern);
  } catch (e) {
    expect(e).toBeInstanceOf(Re2Error);
    return (e as Error).message;
  }
  throw new Error(`${pattern} was accepted`);
};

describe('compileRe2: matching', () => {
  it('matches the whole value, as Envoy safe_regex does', () => {
    const re = compileRe2('/api/v[0-9]+');
    expect(re.test('/api/v1')).toBe(true);
    expect(re.test('/api/v12')).toBe(true);
    expect(re.test('/api/v1/users')).toBe(false);
    expect(re.test('x/api/v1')).toBe(false);
  });

  it('a full match is found even when the leftmost alternative is shorter', () => {
    expect(compileRe2('a|ab').test('ab')).toBe(true);
  });

  it('reads Istio\'s documented (?i) prefix as case-insensitive', () => {
    const re = compileRe2('(?i)/Reviews/.*');
    expect(re.test('/REVIEWS/1')).toBe(true);
    expect(re.test('/reviews/1')).toBe(true);
    expect(compileRe2('/Reviews/.*').test('/reviews/1')).toBe(false);
  });

  it('takes RE2 syntax JavaScript does not: \\z, \\Q..\\E, (?P<name>), POSIX classes, (?U)', () => {
    expect(compileRe2('/a\\z').test('/a')).toBe(true);
    expect(compileRe2('\\Q/a.b*\\E').test('/a.b*')).toBe(true);
    expect(compileRe2('\\Q/a.b*\\E').test('/aXbb')).toBe(false);
    expect(compileRe2('/(?P<id>[[:digit:]]+)').test('/42')).toBe(true);
    expect(compileRe2('(?U)a+b').test('aaab')).toBe(true);
  });

  it('survives a catastrophic-backtracking pattern on a hostile input', () => {
    const hostile = 'a'.repeat(50_000) + '!';
    expect(compileRe2('(a+)+$').test(hostile)).toBe(false);
    expect(compileRe2('(a|aa)+').test(hostile)).toBe(false);
    expect(compileRe2('(.*a){20}').test(hostile)).toBe(false);
    expect(compileRe2('(a+)+').test('a'.repeat(50_000))).toBe(true);
    expect(compileRe2('(a+)+!').replaceAll(hostile, 'x')).toBe('x');
  });
});

describe('compileRe2: refusals', () => {
  it('refuses lookarounds, naming RE2', () => {
    for (const p of ['a(?=x)', 'a(?!x)', '(?<=a)b', '(?<!a)b']) expect(refusal(p)).toMatch(/lookarounds are not RE2/);
  });

  it('refuses backreferences', () => {
    expect(refusal('(a)\\1')).toMatch(/backreferences are not RE2/);
    expect(refusal('(?<x>a)\\k<x>')).toMatch(/backreferences are not RE2/);
  });

  it('refuses malformed patterns with the pattern and the problem', () => {
    expect(refusal('(')).toMatch(/invalid regex "\(": missing closing \)/);
    expect(refusal('a**')).toMatch(/invalid nested repetition/);
    expect(refusal('x{1001}')).toMatch(/invalid repeat count/);
    expect(refusal('\\Z')).toMatch(/invalid escape/);
  });

  it('refuses a pattern whose program is larger than Envoy allows under Istio', () => {
    // 40 distinct a{999}-sized alternatives: a few hundred characters, a program of ~40k
    const big = `(?:${Array.from({ length: 40 }, (_, i) => `${String.fromCharCode(97 + (i % 26))}${i}{999}`).join('|')})`;
    expect(big.length).toBeLessThan(1024);
    expect(refusal(big)).toMatch(new RegExp(`program size \\d+ exceeds ${MAX_PROGRAM_SIZE}`));
    expect(() => compileRe2('[a-z]{1000}')).not.toThrow();
  });

  it('keeps the engine error as the cause', () => {
    try {
      compileRe2('(');
    } catch (e) {
      expect((e as Error).cause).toBeInstanceOf(Error);
    }
  });
});

describe('compileRe2: replaceAll (RegexMatchAndSubstitute)', () => {
  it('rewrites with group references, as in Envoy\'s and Istio\'s example', () => {
    const re = compileRe2('^/service/([^/]+)(/.*)$');
    expect(re.replaceAll('/service/foo/v1/api', '\\2/instance/\\1')).toBe('/v1/api/instance/foo');
  });

  it('replaces every non-overlapping match and leaves the rest', () => {
    expect(compileRe2('o+').replaceAll('/foo/boo/bar', '0')).toBe('/f0/b0/bar');
    expect(compileRe2('x').replaceAll('/abc', 'y')).toBe('/abc');
  });

  it('\\0 is the whole match, \\\\ a backslash, an unmatched group empty', () => {
    expect(compileRe2('b+').replaceAll('abbc', '[\\0]')).toBe('a[bb]c');
    expect(compileRe2('b').replaceAll('abc', '\\\\')).toBe('a\\c');
    expect(compileRe2('(x)|b').replaceAll('abc', '<\\1>')).toBe('a<>c');
  });

  it('follows RE2, not JavaScript, for empty matches right after a match', () => {
    // JavaScript's "baac".replace(/a|/g, "-") gives "-b---c-"
    expect(compileRe2('a|').replaceAll('baac', '-')).toBe('-b--c-');
    expect(compileRe2('').replaceAll('ab', '-')).toBe('-a-b-');
    expect(compileRe2('x*').replaceAll('a😀', '-')).toBe('-a-😀-');
  });

  it('(?i) applies to the rewrite match too', () => {
    expect(compileRe2('(?i)^/API').replaceAll('/Api/x', '/v2')).toBe('/v2/x');
  });

  it('refuses a substitution naming a group the pattern lacks, or a stray backslash', () => {
    const re = compileRe2('/(a)/(b)');
    expect(() => re.substitution('\\3')).toThrow(/refers to group \\3, but "\/\(a\)\/\(b\)" has 2 capture groups/);
    expect(() => re.substitution('\\n')).toThrow(/backslash must be followed by a group number/);
    expect(() => re.substitution('x\\')).toThrow(/backslash must be followed by a group number/);
    expect(re.substitution('\\2\\1').parts).toEqual([2, 1]);
  });
});
