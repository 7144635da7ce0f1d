// FastCDC exactly as src/core/chunker.c cuts, so files uploaded here dedup with
// the CLI's and the hosts' (same boundaries, same SHA-256 names). The 64-bit
// gear hash is kept as two 32-bit halves: BigInt per byte would be far slower.

function splitmix64Table() {
  let state = 0x726f6f7374636463n; // "roostcdc"
  const M = (1n << 64n) - 1n;
  const hi = new Uint32Array(256), lo = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    state = (state + 0x9e3779b97f4a7c15n) & M;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
    z = z ^ (z >> 31n);
    hi[i] = Number(z >> 32n);
    lo[i] = Number(z & 0xffffffffn);
  }
  return { hi, lo };
}

let gear = null;

function log2Round(v) {
  let bits = 0;
  while (2 ** (bits + 1) <= v) bits++;
  if (bits < 31 && v - 2 ** bits > 2 ** (bits + 1) - v) bits++;
  return bits;
}

// ~0 << (64 - bits) as {hi, lo}
function topMask(bits) {
  if (bits === 0) return { hi: 0, lo: 0 };
  if (bits <= 32) return { hi: bits === 32 ? 0xffffffff : ((0xffffffff << (32 - bits)) >>> 0), lo: 0 };
  return { hi: 0xffffffff, lo: bits === 64 ? 0xffffffff : ((0xffffffff << (64 - bits)) >>> 0) };
}

export class Chunker {
  constructor({ min, avg, max }) {
    if (!gear) gear = splitmix64Table();
    this.min = min;
    this.avg = avg;
    this.max = max;
    const bits = log2Round(avg);
    this.small = topMask(bits + 2);
    this.large = topMask(bits > 2 ? bits - 2 : 1);
    this.pos = 0;
    this.hi = 0;
    this.lo = 0;
  }

  // Bytes of data[from..] that belong to the current chunk, and whether it ends there.
  scan(data, from) {
    const start = this.pos, len = data.length - from;
    let hi = this.hi, lo = this.lo, k = 0;
    if (start < this.min) {
      const skip = this.min - start;
      k = skip < len ? skip : len;
      hi = 0;
      lo = 0;
    }
    const ghi = gear.hi, glo = gear.lo;
    for (let stage = 0; stage < 2 && k < len; stage++) {
      const stop = stage === 0 ? this.avg : this.max;
      const seen = start + k;
      if (seen >= stop) continue;
      const m = stage === 0 ? this.small : this.large;
      const mhi = m.hi, mlo = m.lo;
      const room = stop - seen;
      const end = room < len - k ? k + room : len;
      for (; k < end; k++) {
        const b = data[from + k];
        hi = ((hi << 1) | (lo >>> 31)) >>> 0;
        const l2 = ((lo << 1) >>> 0) + glo[b];
        lo = l2 >>> 0;
        hi = (hi + ghi[b] + (l2 > 0xffffffff ? 1 : 0)) >>> 0;
        if ((hi & mhi) === 0 && (lo & mlo) === 0) {
          k++;
          this.pos = 0;
          this.hi = this.lo = 0;
          return { n: k, cut: true };
        }
      }
    }
    if (start + k >= this.max) {
      this.pos = 0;
      this.hi = this.lo = 0;
      return { n: k, cut: true };
    }
    this.pos = start + k;
    this.hi = hi;
    this.lo = lo;
    return { n: k, cut: false };
  }
}
