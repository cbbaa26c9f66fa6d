// The Prometheus text exposition format, read back: what `tandem stat` needs from a
// sidecar's /metrics (sample lines with their labels; HELP/TYPE comments are skipped).

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

function parseValue(v: string): number {
  if (v === '+Inf' || v === 'Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  if (v === 'NaN') return NaN;
  const n = Number(v);
  if (v === '' || Number.isNaN(n)) throw new Error(`not a number: ${JSON.stringify(v)}`);
  return n;
}

/** Every sample of a scrape; a malformed line is an error naming its line number. */
export function parsePrometheusText(text: string): Sample[] {
  const out: Sample[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    try {
      out.push(parseLine(line));
    } catch (err) {
      throw new Error(`metrics line ${i + 1}: ${(err as Error).message}`, { cause: err });
    }
  }
  return out;
}

function parseLine(line: string): Sample {
  const name = NAME.exec(line)?.[0];
  if (!name) throw new Error('no metric name');
  let pos = name.length;
  const labels: Record<string, string> = {};
  if (line[pos] === '{') {
    pos++;
    for (;;) {
      while (line[pos] === ' ' || line[pos] === ',') pos++;
      if (line[pos] === '}') {
        pos++;
        break;
      }
      const key = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(pos))?.[0];
      if (!key || line[pos + key.length] !== '=' || line[pos + key.length + 1] !== '"') throw new Error(`bad label at column ${pos + 1}`);
      pos += key.length + 2;
      let value = '';
      for (;;) {
        const c = line[pos++];
        if (c === undefined) throw new Error(`unterminated value of label ${key}`);
        if (c === '"') break;
        if (c === '\\') {
          const e = line[pos++];
          value += e === 'n' ? '\n' : e;
        } else value += c;
      }
      labels[key] = value;
    }
  }
  const [value] = line.slice(pos).trim().split(/\s+/);
  return { name, labels, value: parseValue(value ?? '') };
}
