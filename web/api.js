// The PhotoSky API: JSON over fetch with the Cognito ID token, contract errors turned into ApiError, the public
// share-link routes (no token at all; a password link's access token in X-Link-Access), and the direct-to-S3 upload
// (XMLHttpRequest, because fetch reports no upload progress).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

const FALLBACK_MESSAGES = {
  401: "Your session has ended. Please sign in again.",
  403: "That is not allowed.",
  404: "Not found.",
  409: "Someone changed this in the meantime.",
  413: "That file is too large.",
  415: "That type of file is not supported.",
  429: "Too many requests, or your quota is full. Try again later.",
  503: "The service is busy. Try again in a moment.",
};

// Retry-After is either a number of seconds or an HTTP date (RFC 9110); null when absent or unreadable.
export function retryAfterSeconds(value) {
  if (!value) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const when = Date.parse(text);
  return Number.isNaN(when) ? null : Math.max(1, Math.ceil((when - Date.now()) / 1000));
}

export class Api {
  constructor(baseUrl, auth) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.auth = auth;
  }

  async request(method, path, body) {
    let response = await this.send(method, path, body, await this.auth.idToken());
    if (response.status === 401) {
      // The token may have been revoked or expired while the tab slept: refresh once, then give up.
      await this.auth.refresh();
      response = await this.send(method, path, body, await this.auth.idToken());
      if (response.status === 401) this.auth.forget();
    }
    return this.parse(response);
  }

  // The /public routes: never the signed-in user's token (a link visitor is nobody), never a refresh on 401
  // (there it means "password required" or "wrong password", not "session ended").
  async publicRequest(method, path, { body, access = null } = {}) {
    const headers = {};
    if (access) headers["X-Link-Access"] = access;
    return this.parse(await this.send(method, path, body, null, headers));
  }

  async send(method, path, body, token, extraHeaders = {}) {
    const headers = { ...extraHeaders };
    if (token) headers.Authorization = token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    try {
      return await fetch(this.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "NetworkError", "Cannot reach the PhotoSky API. Check your connection and try again.");
    }
  }

  async parse(response) {
    if (response.status === 204) return null;
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (response.ok) return data;
    // Contract errors are {"Code", "Message"}; API Gateway's 401 is {"message"}.
    const code = (data && data.Code) || `HTTP${response.status}`;
    const message =
      (data && (data.Message || (response.status !== 401 && data.message))) ||
      FALLBACK_MESSAGES[response.status] ||
      `Unexpected error (HTTP ${response.status}).`;
    const error = new ApiError(response.status, code, message);
    // What an error says beyond its message, e.g. a DuplicatePhoto's `photo_id` (the library's copy).
    if (data && typeof data.photo_id === "string") error.photoId = data.photo_id;
    // Whatever the status (503 throttled, 429 rate limited or over quota), Retry-After says when to try again.
    const retryAfter = retryAfterSeconds(response.headers.get("Retry-After"));
    if (retryAfter !== null) error.retryAfter = retryAfter;
    throw error;
  }

  getProfile() {
    return this.request("GET", "/users/me");
  }
  createProfile(profile) {
    return this.request("POST", "/users", profile);
  }
  updateProfile(changes) {
    return this.request("PATCH", "/users/me", changes);
  }
  // `sort`: "uploaded" (the API's default) or "taken"; `from`/`to`: YYYY-MM-DD, inclusive, on the sort's time.
  listPhotos({ limit = 24, cursor = null, tag = null, favorite = false, sort = null, from = null, to = null } = {}) {
    const query = pageQuery(limit, cursor);
    if (tag) query.set("tag", tag);
    if (favorite) query.set("favorite", "true");
    if (sort) query.set("sort", sort);
    if (from) query.set("from", from);
    if (to) query.set("to", to);
    return this.request("GET", `/photos?${query}`);
  }
  getTimeline() {
    return this.request("GET", "/photos/timeline");
  }
  getPhoto(id) {
    return this.request("GET", photoPath(id));
  }
  startUpload(details) {
    return this.request("POST", "/photos", details);
  }
  updatePhoto(id, changes) {
    return this.request("PATCH", photoPath(id), changes);
  }
  // To the trash (a photo still processing, or rejected, goes for good); `permanent` purges at once.
  deletePhoto(id, { permanent = false } = {}) {
    return this.request("DELETE", `${photoPath(id)}${permanent ? "?permanent=true" : ""}`);
  }
  restorePhoto(id) {
    return this.request("POST", `${photoPath(id)}/restore`);
  }
  // One action on up to `limits.batch_photos` photos: {results: [{photo_id, status, message?}]}.
  batchPhotos(action, photoIds, tags = undefined) {
    return this.request("POST", "/photos/batch", tags === undefined ? { action, photo_ids: photoIds } : { action, photo_ids: photoIds, tags });
  }
  listTrash({ limit = 24, cursor = null } = {}) {
    return this.request("GET", `/trash?${pageQuery(limit, cursor)}`);
  }
  // 204 (null) once the trash is empty; 202 {remaining} when the API ran out of time first: call again.
  emptyTrash() {
    return this.request("DELETE", "/trash");
  }
  // 204 (null) once everything of the caller's is gone; 202 {status: "deleting"} while work goes on: call again.
  deleteAccount() {
    return this.request("DELETE", "/users/me");
  }

  // Albums (owner and members), their photos, members and share links.
  listAlbums({ limit = 50, cursor = null } = {}) {
    return this.request("GET", `/albums?${pageQuery(limit, cursor)}`);
  }
  createAlbum(album) {
    return this.request("POST", "/albums", album);
  }
  getAlbum(id) {
    return this.request("GET", albumPath(id));
  }
  updateAlbum(id, changes) {
    return this.request("PATCH", albumPath(id), changes);
  }
  deleteAlbum(id) {
    return this.request("DELETE", albumPath(id));
  }
  listAlbumPhotos(id, { limit = 24, cursor = null } = {}) {
    return this.request("GET", `${albumPath(id)}/photos?${pageQuery(limit, cursor)}`);
  }
  addAlbumPhotos(id, photoIds) {
    return this.request("POST", `${albumPath(id)}/photos`, { photo_ids: photoIds });
  }
  removeAlbumPhotos(id, photoIds) {
    return this.request("POST", `${albumPath(id)}/photos/remove`, { photo_ids: photoIds });
  }
  listMembers(id) {
    return this.request("GET", `${albumPath(id)}/members`);
  }
  addMember(id, username, role) {
    return this.request("POST", `${albumPath(id)}/members`, { username, role });
  }
  updateMember(id, userId, role) {
    return this.request("PATCH", `${albumPath(id)}/members/${encodeURIComponent(userId)}`, { role });
  }
  removeMember(id, userId) {
    return this.request("DELETE", `${albumPath(id)}/members/${encodeURIComponent(userId)}`);
  }
  listLinks(id) {
    return this.request("GET", `${albumPath(id)}/links`);
  }
  createLink(id, options) {
    return this.request("POST", `${albumPath(id)}/links`, options);
  }
  revokeLink(id, linkId) {
    return this.request("DELETE", `${albumPath(id)}/links/${encodeURIComponent(linkId)}`);
  }

  // A share link's album, as anyone holding the link sees it.
  getPublicAlbum(token, { limit = 24, cursor = null, access = null } = {}) {
    return this.publicRequest("GET", `/public/albums/${encodeURIComponent(token)}?${pageQuery(limit, cursor)}`, { access });
  }
  unlockPublicAlbum(token, password) {
    return this.publicRequest("POST", `/public/albums/${encodeURIComponent(token)}/unlock`, { body: { password } });
  }
}

function photoPath(id) {
  return `/photos/${encodeURIComponent(id)}`;
}

function albumPath(id) {
  return `/albums/${encodeURIComponent(id)}`;
}

function pageQuery(limit, cursor) {
  const query = new URLSearchParams({ limit: String(limit) });
  if (cursor) query.set("cursor", cursor);
  return query;
}

// POST the file to the presigned S3 URL: every field of the policy, then the file last.
export function uploadToStorage(upload, file, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
    form.append("file", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", upload.url);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(1);
        resolve();
      } else {
        const reason = /<Message>([^<]*)<\/Message>/.exec(xhr.responseText || "");
        reject(new ApiError(xhr.status, "UploadFailed", `Storage refused the file (HTTP ${xhr.status})${reason ? `: ${reason[1]}` : "."}`));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "NetworkError", "The upload was interrupted. Try again.")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "Aborted", "The upload was cancelled.")));
    xhr.send(form);
  });
}
