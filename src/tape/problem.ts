import { redactText } from '../log.js';

/**
 * The words of an RFC 7807 problem (`title`, `detail`) or, failing that, of whatever the body
 * says. dCache sends `status` as a string and at times an empty body: never rely on either.
 */
export function problemText(body: string): string {
  let said = body.trim();
  try {
    const json = JSON.parse(body) as { title?: unknown; detail?: unknown };
    const parts = [json.title, json.detail].filter((v): v is string => typeof v === 'string' && v.length > 0);
    if (parts.length) said = parts.join(': ');
  } catch {
    // not JSON: the text as it came
  }
  return redactText(said.replace(/\s+/g, ' ')).slice(0, 500) || '(no reason given)';
}
