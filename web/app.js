// PhotoSky's reference web client: the router. A hash route (#/photo/<id>?...) picks a view module; every view gets
// the one session object below, which this module owns. Modules, no build step: see ../README.md, "Web client".
import { Api } from "./api.js";
import { Auth } from "./auth.js";
import { announce, clearError, h, page, showError } from "./dom.js";
import { Live } from "./live.js";
import { renderFarewell } from "./views/account.js";
import { renderAlbum } from "./views/album.js";
import { renderAlbums } from "./views/albums.js";
import { renderConfirm, renderSignIn, renderSignUp } from "./views/auth.js";
import { renderFavourites, renderGallery } from "./views/gallery.js";
import { renderPhoto } from "./views/photo.js";
import { renderProfile } from "./views/profile.js";
import { renderPublicAlbum } from "./views/public.js";
import { renderTimeline } from "./views/timeline.js";
import { renderTrash } from "./views/trash.js";

// Each view is `(session, { ticket, params, query })`; it may be async and throw (shown as an alert).
const VIEWS = {
  signin: renderSignIn,
  signup: renderSignUp,
  confirm: renderConfirm,
  gallery: renderGallery,
  timeline: renderTimeline,
  favourites: renderFavourites,
  trash: renderTrash,
  photo: renderPhoto,
  profile: renderProfile,
  albums: renderAlbums,
  album: renderAlbum,
  s: renderPublicAlbum,
  farewell: renderFarewell,
};
// For signed-out visitors only (signed in, they lead to the gallery); the farewell page follows a deleted account.
const PUBLIC_ROUTES = new Set(["signin", "signup", "confirm", "farewell"]);
// For anyone, signed in or not: a share link's album (#/s/<token>) never uses the visitor's own session.
const OPEN_ROUTES = new Set(["s"]);

// What the views share. `config` is /config.json (where the API and Cognito are); `limits` is its `limits`, the
// ones the API enforces (lengths, upload size, accepted types); `live` is the status socket (./live.js), which
// never connects without the config's `ws_url` (the views then poll). Every render takes a new ticket: a view checks
// `isCurrent(ticket)` after each await, because the user may have moved on meanwhile.
const session = {
  config: null,
  limits: null,
  auth: null,
  api: null,
  live: null,
  renders: 0,
  // Where the next sign-out lands instead of the sign-in page (the farewell page after deleting the account).
  afterSignOut: null,
  isCurrent(ticket) {
    return ticket === this.renders;
  },
  // For a view that renders itself again (after a save): older tickets become stale.
  nextTicket() {
    this.renders += 1;
    return this.renders;
  },
  go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
};

function parseHash() {
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name = "", ...rest] = path.split("/");
  return { name: name || "gallery", params: rest.map(decodeURIComponent), query: new URLSearchParams(query) };
}

async function route() {
  const ticket = session.nextTicket();
  clearError();
  const { name, params, query } = parseHash();
  const { auth } = session;
  document.getElementById("nav").hidden = !auth.signedIn;
  document.getElementById("who").textContent = auth.signedIn ? `Signed in as ${auth.username}` : "";
  const open = OPEN_ROUTES.has(name);
  if (!auth.signedIn && !PUBLIC_ROUTES.has(name) && !open) {
    renderSignIn(session, { ticket, params, query });
    return;
  }
  if (auth.signedIn && PUBLIC_ROUTES.has(name)) {
    session.go("#/gallery");
    return;
  }
  const view = VIEWS[name];
  if (!view) {
    page("Page not found", h("p", {}, h("a", { href: "#/gallery" }, "Back to your photos")));
    return;
  }
  try {
    await view(session, { ticket, params, query });
  } catch (error) {
    if (!session.isCurrent(ticket)) return;
    if (!auth.signedIn && !open) return; // the session ended: the sign-in screen is already showing
    showError(error);
  }
}

async function start() {
  let config;
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`config.json: HTTP ${response.status}`);
    config = await response.json();
    if (!config.limits) throw new Error("config.json has no limits");
  } catch (error) {
    page("PhotoSky is not configured", h("p", {}, `This site has no usable config.json (${error.message}). See the README, “Web client”.`));
    return;
  }
  session.config = config;
  session.limits = config.limits;
  let wasSignedIn = false;
  const auth = new Auth(config, {
    onChange: () => {
      if (wasSignedIn && !auth.signedIn) {
        const landing = session.afterSignOut;
        session.afterSignOut = null;
        session.go(landing || "#/signin");
        if (!landing) announce("You are signed out.");
      }
      wasSignedIn = auth.signedIn;
      // Signed in, refreshed or signed out: the socket follows (opened, handed over to the new token, closed).
      if (session.live) session.live.sync();
    },
  });
  wasSignedIn = auth.signedIn;
  session.auth = auth;
  session.api = new Api(config.api_url, auth);
  session.live = new Live(config.ws_url, auth);
  // Whether the socket is up, for styles and tests: "on" while messages arrive, "off" while the views poll.
  document.body.dataset.live = "off";
  session.live.on("open", () => {
    document.body.dataset.live = "on";
  });
  session.live.on("close", () => {
    document.body.dataset.live = "off";
  });
  session.live.sync();
  document.getElementById("sign-out").addEventListener("click", async () => {
    await auth.signOut();
  });
  window.addEventListener("hashchange", route);
  await route();
}

start();
