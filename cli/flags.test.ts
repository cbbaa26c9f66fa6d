import { describe, expect, it } from 'vitest';
import { HelpRequested, usageOf, parseFlags, parseLabels, UsageError } from './flags';

const SPEC = { service: { required: true }, admin: { default: '127.0.0.1:15000' }, verbose: { boolean: true } };

describe('parseFlags', () => {
  it('reads --name value and --name=value, fills defaults', () => {
    expect(parseFlags(['--service', 'reviews', '--admin=:0'], SPEC)).toEqual({ service: 'reviews', admin: ':0', verbose: undefined });
    expect(parseFlags(['--service=a', '--verbose'], SPEC)).toEqual({ service: 'a', admin: '127.0.0.1:15000', verbose: 'true' });
  });

  it.each([
    [['--service', 'a', '--bogus', '1'], /bogus/],
    [['--service'], /service/],
    [['--service', 'a', 'stray'], /stray/],
    [['--admin', ':0'], /--service is required/],
  ])('refuses %j as a usage error', (argv, message) => {
    expect(() => parseFlags(argv, SPEC)).toThrow(UsageError);
    expect(() => parseFlags(argv, SPEC)).toThrow(message);
  });

  it('answers --help with the usage, required and defaults shown', () => {
    const err = (() => {
      try {
        parseFlags(['--bogus', '--help'], SPEC, 'sidecar');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toBeInstanceOf(HelpRequested);
    expect(err?.message).toMatch(/usage: tandem sidecar/);
    expect(err?.message).toMatch(/--service VALUE\s+\(required\)/);
    expect(err?.message).toMatch(/--admin VALUE\s+\(default: 127\.0\.0\.1:15000\)/);
  });

  it('keeps the notes in one column past a flag name longer than the usual width', () => {
    const usage = usageOf('x', { 'a-rather-long-flag-name-indeed': { default: '1' }, short: { default: '2' } });
    const [long, short] = usage.split('\n').filter((l) => l.startsWith('  --'));
    expect(long).toMatch(/VALUE {2}\(default: 1\)$/);
    expect(long.indexOf('(default')).toBe(short.indexOf('(default'));
  });

  it('reads labels k=v,k=v and refuses anything else', () => {
    expect(parseLabels('app=reviews, version=v2')).toEqual({ app: 'reviews', version: 'v2' });
    expect(() => parseLabels('app')).toThrow(UsageError);
  });
});
