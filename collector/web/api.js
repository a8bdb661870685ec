// The JSON API of the collector serving this page, called with the token
// the user pasted. The token lives in sessionStorage: it is gone when the
// tab closes and is never sent anywhere but this origin's /api/v1/.

const KEY = 'census.token';

export const session = {
  token: () => sessionStorage.getItem(KEY) || '',
  set: (token) => sessionStorage.setItem(KEY, token),
  clear: () => sessionStorage.removeItem(KEY),
  // Filled from /api/v1/whoami after sign-in: {token_id, name, role}.
  who: null,
};

const RANK = { viewer: 0, operator: 1, admin: 2 };

/// Whether the signed-in token's role is at least `role`. Only a hint for
/// what to offer: the server checks every call itself.
export function can(role) {
  return session.who !== null && RANK[session.who.role] >= RANK[role];
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /// A sentence for the user.
  explain() {
    if (this.status === 403) {
      return `Not allowed: ${this.message}. Ask an administrator for a token with a higher role.`;
    }
    if (this.status === 401) return `Not signed in: ${this.message}`;
    if (this.status === 0) return this.message;
    return this.message;
  }
}

export async function api(method, path, body) {
  const headers = { Accept: 'application/json', Authorization: `Bearer ${session.token()}` };
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'unreachable', `The collector could not be reached (${e.message}).`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    throw new ApiError(response.status, 'bad_answer', `The collector answered ${response.status} without JSON.`);
  }
  if (!response.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(response.status, err.code || 'error', err.message || `HTTP ${response.status}`);
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body ?? {});

/// `path` with the query parameters that are set.
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '' && v !== false) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
