import type { MiddlewareHandler } from 'hono';
import { validator } from 'hono/validator';
import type { z } from 'zod';
import { PetrelError } from '../src/errors.js';

const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i;

/** The first few problems, by path, without echoing the rejected input (it may hold a token). */
function describe(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`)
    .join('; ');
}

/** A parser that throws API_BAD_REQUEST naming `what` and the first few problems. */
export function parseWith<S extends z.ZodType>(schema: S, what: string) {
  return (value: unknown): z.output<S> => {
    const res = schema.safeParse(value);
    if (!res.success) {
      throw new PetrelError('API_BAD_REQUEST', `invalid ${what}: ${describe(res.error)}`, { hint: 'see the socket API in the README' });
    }
    return res.data;
  };
}

const requireJson: MiddlewareHandler = async (c, next) => {
  const type = (c.req.header('Content-Type') ?? '').split(';')[0]?.trim() ?? '';
  if (!JSON_TYPE.test(type)) {
    throw new PetrelError('API_UNSUPPORTED_MEDIA_TYPE', `the request body must be JSON, not ${type || 'untyped'}`, { hint: 'send Content-Type: application/json' });
  }
  await next();
};

export const jsonBody = <S extends z.ZodType>(schema: S) => [requireJson, validator('json', parseWith(schema, 'request body'))] as const;
export const queryOf = <S extends z.ZodType>(schema: S) => validator('query', parseWith(schema, 'query'));
