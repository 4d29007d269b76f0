// A line diff: the longest common subsequence of two texts' lines, as a
// list of kept, added and removed lines. Blueprints are small (hundreds
// of lines at most), so the quadratic table is no concern.

/**
 * lineDiff returns [{op: ' '|'+'|'-', text, a, b}] where a and b are the
 * 1-based line numbers in the old and the new text (0 when absent).
 */
export function lineDiff(oldText, newText) {
  const a = oldText.split('\n');
  const b = newText.split('\n');
  if (a[a.length - 1] === '') a.pop();
  if (b[b.length - 1] === '') b.pop();
  // Leading and trailing lines in common need no table.
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start += 1;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA -= 1;
    endB -= 1;
  }
  const n = endA - start;
  const m = endB - start;
  // lcs[i][j]: length of the LCS of a[start+i..endA) and b[start+j..endB).
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i -= 1) {
    for (let j = m - 1; j >= 0; j -= 1) {
      lcs[i][j] = a[start + i] === b[start + j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  for (let k = 0; k < start; k += 1) out.push({ op: ' ', text: a[k], a: k + 1, b: k + 1 });
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[start + i] === b[start + j]) {
      out.push({ op: ' ', text: a[start + i], a: start + i + 1, b: start + j + 1 });
      i += 1;
      j += 1;
    } else if (i < n && (j >= m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      // Removed lines come before the added lines that replace them.
      out.push({ op: '-', text: a[start + i], a: start + i + 1, b: 0 });
      i += 1;
    } else {
      out.push({ op: '+', text: b[start + j], a: 0, b: start + j + 1 });
      j += 1;
    }
  }
  for (let k = 0; k < a.length - endA; k += 1) out.push({ op: ' ', text: a[endA + k], a: endA + k + 1, b: endB + k + 1 });
  return out;
}

/** stableJSON pretty-prints a value with its object keys sorted. */
export function stableJSON(value) {
  const sort = (v) => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort(v[k])]));
    }
    return v;
  };
  return JSON.stringify(sort(value), null, 2);
}
