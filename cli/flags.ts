// A small, strict flag parser: --name value or --name=value; unknown flags are usage errors.
export class UsageError extends Error {
  readonly code = 'USAGE';
}

/** `--help` or `-h`: the message is the usage, printed on stdout with exit status 0. */
export class HelpRequested extends Error {
  readonly code = 'HELP';
}

export interface FlagSpec {
  /** `shown`: what the usage prints as the default, where the default itself is not for printing (a token) */
  [name: string]: { default?: string; boolean?: boolean; required?: boolean; shown?: string };
}

export function usageOf(command: string, spec: FlagSpec): string {
  const lines = Object.entries(spec).map(([name, v]) => {
    const value = v.boolean ? '' : ' VALUE';
    const note = v.required ? '(required)' : v.shown !== undefined ? `(default: ${v.shown})` : v.default !== undefined ? `(default: ${v.default})` : '';
    return (`  --${name}${value}`.padEnd(32) + note).trimEnd();
  });
  return `usage: tandem ${command} [flags]\n\nflags:\n${lines.join('\n')}\n`;
}

export function parseFlags(argv: string[], spec: FlagSpec, command = ''): Record<string, string | undefined> {
  if (argv.includes('--help') || argv.includes('-h')) throw new HelpRequested(usageOf(command, spec));
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(spec)) out[k] = v.default;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument ${JSON.stringify(a)}`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const s = spec[name];
    if (!s) throw new UsageError(`unknown flag --${name}`);
    if (s.boolean) {
      out[name] = eq > 0 ? a.slice(eq + 1) : 'true';
      continue;
    }
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    out[name] = value;
  }
  for (const [k, v] of Object.entries(spec)) if (v.required && !out[k]) throw new UsageError(`--${k} is required`);
  return out;
}

export function parseLabels(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const part of s.split(',').filter(Boolean)) {
    const i = part.indexOf('=');
    if (i <= 0) throw new UsageError(`--labels: expected k=v,k=v, got ${JSON.stringify(s)}`);
    out[part.slice(0, i).trim()] = part.slice(i + 1).trim();
  }
  return out;
}
