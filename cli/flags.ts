// Flags as node:util parseArgs reads them (--name value or --name=value, strict: unknown
// flags and stray arguments are usage errors), with defaults, required flags and --help.
import { parseArgs } from 'node:util';

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
  const flags = Object.entries(spec).map(([name, v]) => `  --${name}${v.boolean ? '' : ' VALUE'}`);
  // the notes in one column, two spaces past the longest flag
  const width = Math.max(32, ...flags.map((f) => f.length + 2));
  const lines = Object.entries(spec).map(([, v], i) => {
    const note = v.required ? '(required)' : v.shown !== undefined ? `(default: ${v.shown})` : v.default !== undefined ? `(default: ${v.default})` : '';
    return (flags[i].padEnd(width) + note).trimEnd();
  });
  return `usage: tandem ${command} [flags]\n\nflags:\n${lines.join('\n')}\n`;
}

export function parseFlags(argv: string[], spec: FlagSpec, command = ''): Record<string, string | undefined> {
  if (argv.includes('--help') || argv.includes('-h')) throw new HelpRequested(usageOf(command, spec));
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: Object.fromEntries(Object.entries(spec).map(([k, v]) => [k, { type: v.boolean ? 'boolean' : 'string' }] as const)),
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    // parseArgs's own wording, without its hint about "--" (no command takes positionals)
    throw new UsageError((err as Error).message.split('. To specify')[0], { cause: err });
  }
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(spec)) {
    const given = values[k];
    out[k] = given === undefined ? v.default : String(given);
    if (v.required && !out[k]) throw new UsageError(`--${k} is required`);
  }
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
