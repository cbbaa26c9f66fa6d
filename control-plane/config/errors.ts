// Errors raised while reading mesh configuration.

export interface ConfigErrorInit {
  file: string;
  /** 0-based document index; undefined for whole-file problems */
  doc?: number;
  /** e.g. "VirtualService default/reviews", shown next to the document index */
  label?: string;
  /** field path such as spec.http[0].route[1].weight */
  field?: string;
  /** 1-based line, when the YAML parser reports one */
  line?: number;
  /** the problem itself, without the location prefix */
  detail: string;
}

function format(i: ConfigErrorInit): string {
  let s = `${i.file}: `;
  if (i.doc !== undefined) s += `document ${i.doc}${i.label ? ` (${i.label})` : ''}: `;
  if (i.field) s += `${i.field}: `;
  return s + i.detail;
}

/**
 * A rejected configuration. When several problems were found, `errors` lists them all
 * (this one's own location is that of the first) and the message has one line each, the
 * first line being the first problem, so a one-line log still names a real location.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly file: string;
  readonly doc: number | undefined;
  readonly field: string | undefined;
  readonly line: number | undefined;
  readonly detail: string;
  readonly errors: readonly ConfigError[];

  constructor(init: ConfigErrorInit, errors?: readonly ConfigError[]) {
    super(errors && errors.length > 1 ? errors.map((e) => e.message).join('\n') : format(init));
    this.file = init.file;
    this.doc = init.doc;
    this.field = init.field;
    this.line = init.line;
    this.detail = init.detail;
    this.errors = errors && errors.length > 1 ? errors : [this];
  }

  /** For /debug/config and logs; `errors` would otherwise make the structure circular. */
  toJSON(): { message: string; file: string; doc?: number; field?: string; line?: number } {
    return { message: this.message, file: this.file, doc: this.doc, field: this.field, line: this.line };
  }

  /** One error standing for all of `errors` (which must not be empty). */
  static aggregate(errors: readonly ConfigError[]): ConfigError {
    if (errors.length === 1) return errors[0];
    const first = errors[0];
    return new ConfigError(
      { file: first.file, doc: first.doc, field: first.field, line: first.line, detail: first.detail },
      errors,
    );
  }
}

/** Thrown by the field readers; the document loop adds file and document. */
export class FieldError extends Error {
  constructor(
    readonly field: string | undefined,
    message: string,
  ) {
    super(message);
  }
}
