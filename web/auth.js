// Cognito user-pool sign-up, confirmation, sign-in, refresh and sign-out: plain JSON POSTs to the Cognito endpoint
// (the same calls the AWS SDKs make), so the SPA needs no SDK. Tokens live in sessionStorage: closing the tab
// signs out; a reload does not.

const STORAGE_KEY = "photosky.session";
// Refresh this long before the ID token expires, so a request never leaves with a token about to die.
const REFRESH_MARGIN_MS = 5 * 60 * 1000;

export class AuthError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "AuthError";
    this.code = code;
  }
}

// Cognito answers errors as {"__type": "NotAuthorizedException", "message": "..."}; these read better to a person.
const FRIENDLY = {
  NotAuthorizedException: "Incorrect username or password.",
  UserNotFoundException: "Incorrect username or password.",
  UsernameExistsException: "That username is taken. Choose another one.",
  CodeMismatchException: "That confirmation code is not right. Check it and try again.",
  ExpiredCodeException: "That confirmation code has expired. Sign up again to get a new one.",
  TooManyRequestsException: "Too many attempts. Wait a minute and try again.",
  LimitExceededException: "Too many attempts. Wait a minute and try again.",
};

function decodeClaims(jwt) {
  const payload = jwt.split(".")[1] || "";
  const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

export class Auth {
  constructor(config, { onChange = () => {} } = {}) {
    this.endpoint = config.cognito_endpoint;
    this.clientId = config.user_pool_client_id;
    this.onChange = onChange;
    this.session = null;
    this.refreshTimer = null;
    this.refreshing = null;
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
      if (saved && saved.refreshToken) this.session = saved;
    } catch {
      sessionStorage.removeItem(STORAGE_KEY);
    }
    if (this.session) this.scheduleRefresh();
  }

  get signedIn() {
    return this.session !== null;
  }

  get username() {
    return this.session ? this.session.username : null;
  }

  // The caller's Cognito `sub`: the id the API knows them by (album members, "leave album").
  get userId() {
    return this.session ? decodeClaims(this.session.idToken).sub : null;
  }

  async call(action, body) {
    let response;
    try {
      response = await fetch(this.endpoint, {
        method: "POST",
        headers: {
          "Content-Type": "application/x-amz-json-1.1",
          "X-Amz-Target": `AWSCognitoIdentityProviderService.${action}`,
        },
        body: JSON.stringify(body),
      });
    } catch {
      throw new AuthError("NetworkError", "Cannot reach the sign-in service. Check your connection and try again.");
    }
    const text = await response.text();
    let data = {};
    try {
      data = text ? JSON.parse(text) : {};
    } catch {
      data = {};
    }
    if (!response.ok) {
      const code = String(data.__type || data.code || `HTTP${response.status}`).split("#").pop();
      let message = FRIENDLY[code] || data.message || data.Message || `Sign-in service error (HTTP ${response.status}).`;
      if (code === "InvalidPasswordException") message = `Password not accepted: ${message}`;
      throw new AuthError(code, message);
    }
    return data;
  }

  async signUp(username, password, email) {
    const result = await this.call("SignUp", {
      ClientId: this.clientId,
      Username: username,
      Password: password,
      UserAttributes: [{ Name: "email", Value: email }],
    });
    return { confirmed: Boolean(result.UserConfirmed), delivery: result.CodeDeliveryDetails || null };
  }

  async confirmSignUp(username, code) {
    await this.call("ConfirmSignUp", { ClientId: this.clientId, Username: username, ConfirmationCode: code });
  }

  async signIn(username, password) {
    const result = await this.call("InitiateAuth", {
      AuthFlow: "USER_PASSWORD_AUTH",
      ClientId: this.clientId,
      AuthParameters: { USERNAME: username, PASSWORD: password },
    });
    if (!result.AuthenticationResult) {
      // e.g. NEW_PASSWORD_REQUIRED for a user an administrator created: not something this SPA offers.
      throw new AuthError(result.ChallengeName || "Challenge", "This account needs a step this app does not support yet.");
    }
    this.store(result.AuthenticationResult, username);
  }

  store(result, username) {
    const claims = decodeClaims(result.IdToken);
    this.session = {
      username: claims["cognito:username"] || username,
      idToken: result.IdToken,
      accessToken: result.AccessToken,
      // A refresh answer carries no new refresh token: keep the one we have.
      refreshToken: result.RefreshToken || (this.session && this.session.refreshToken),
      expiresAt: claims.exp * 1000,
    };
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(this.session));
    this.scheduleRefresh();
    this.onChange();
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    if (!this.session) return;
    const delay = Math.max(0, this.session.expiresAt - REFRESH_MARGIN_MS - Date.now());
    this.refreshTimer = setTimeout(() => this.refresh().catch(() => {}), delay);
  }

  // One refresh at a time, however many requests ask for it.
  refresh() {
    if (!this.session) return Promise.reject(new AuthError("SignedOut", "You are signed out."));
    if (!this.refreshing) {
      const { refreshToken, username } = this.session;
      this.refreshing = this.call("InitiateAuth", {
        AuthFlow: "REFRESH_TOKEN_AUTH",
        ClientId: this.clientId,
        AuthParameters: { REFRESH_TOKEN: refreshToken },
      })
        .then((result) => this.store(result.AuthenticationResult, username))
        .catch((error) => {
          if (error.code !== "NetworkError") this.forget();
          throw error;
        })
        .finally(() => {
          this.refreshing = null;
        });
    }
    return this.refreshing;
  }

  // The ID token for the API, refreshed first if it is about to expire.
  async idToken() {
    if (!this.session) throw new AuthError("SignedOut", "You are signed out.");
    if (this.session.expiresAt - Date.now() < REFRESH_MARGIN_MS) await this.refresh();
    return this.session.idToken;
  }

  // The access token is Cognito's own (self-service calls such as DeleteUser); it expires with the ID token.
  async accessToken() {
    if (!this.session) throw new AuthError("SignedOut", "You are signed out.");
    if (this.session.expiresAt - Date.now() < REFRESH_MARGIN_MS) await this.refresh();
    return this.session.accessToken;
  }

  // Deletes the Cognito user itself (after the API has deleted everything of theirs), then the local session: the
  // tokens die with the user, so there is nothing left to sign out of.
  async deleteUser() {
    await this.call("DeleteUser", { AccessToken: await this.accessToken() });
    this.forget();
  }

  async signOut() {
    const session = this.session;
    this.forget();
    if (session) {
      // Revokes this user's refresh tokens; the local copy is gone either way.
      await this.call("GlobalSignOut", { AccessToken: session.accessToken }).catch(() => {});
    }
  }

  forget() {
    clearTimeout(this.refreshTimer);
    const had = this.session !== null;
    this.session = null;
    sessionStorage.removeItem(STORAGE_KEY);
    if (had) this.onChange();
  }
}
