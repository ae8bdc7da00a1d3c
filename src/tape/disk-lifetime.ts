import { PetrelError } from '../errors.js';

/**
 * How long a recalled file should stay on disk (`diskLifetime`), as the user gives it: an ISO 8601
 * duration in the subset dCache accepts (java.time.Duration: PnDTnHnMn.nS; no years, months or
 * weeks), or a shorthand (`90m`, `6h`, `2d`). Returned in ISO form, the only one sent.
 */
export function parseDiskLifetime(text: string): string {
  const trimmed = text.trim();
  const short = /^(\d+)([smhd])$/i.exec(trimmed);
  if (short) {
    const n = Number(short[1]);
    const unit = (short[2] as string).toLowerCase();
    if (n > 0) return unit === 'd' ? `P${n}D` : `PT${n}${unit.toUpperCase()}`;
  }
  const iso = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(trimmed);
  if (iso && trimmed.length > 1 && !/T$/i.test(trimmed) && iso.slice(1).some((v) => v !== undefined && Number(v) > 0)) {
    return trimmed.toUpperCase();
  }
  throw new PetrelError('USAGE', `--disk-lifetime ${text} is not a duration petrel can send`, {
    hint: 'give e.g. 6h, 2d or an ISO 8601 duration of days, hours, minutes, seconds (PT6H, P2DT12H); weeks, months and years (P1W, P1M) are refused by dCache',
  });
}
