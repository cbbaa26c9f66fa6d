import * as conventions from '@opentelemetry/semantic-conventions';
import { describe, expect, it } from 'vitest';
import * as ours from './semconv';

describe('the semantic-convention names written out in semconv.ts', () => {
  it("are the package's own", () => {
    const names = Object.keys(ours);
    expect(names.length).toBe(16);
    for (const name of names) expect([name, ours[name as keyof typeof ours]]).toEqual([name, conventions[name as keyof typeof conventions]]);
  });
});
