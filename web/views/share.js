// Sharing an album (its owner only): members with their roles, added by username; share links, each with an optional
// expiry and password and whether originals may be downloaded. A new link's URL is shown once, with a Copy button:
// the API never hands its token out again.
import { ApiError } from "../api.js";
import { announce, busy, clearError, confirmAction, copyField, field, formatDate, h, showError } from "../dom.js";
import { ROLE_NAMES, roleBadge } from "./albums.js";

const MEMBER_ROLES = ["viewer", "contributor"];

export function publicLinkUrl(token) {
  return `${location.origin}${location.pathname}#/s/${token}`;
}

function memberName(member) {
  return member.display_name ? `${member.display_name} (${member.username})` : member.username;
}

// `label` names a select that has no <label> of its own (one per member row).
function roleSelect(value, label = null) {
  const select = h("select", { "aria-label": label }, ...MEMBER_ROLES.map((role) => h("option", { value: role, selected: role === value }, ROLE_NAMES[role])));
  select.value = value;
  return select;
}

export function shareSection(session, ticket, album) {
  const { api } = session;
  const members = h("ul", { class: "rows", id: "members", "aria-label": "Members" });
  const links = h("ul", { class: "rows", id: "links", "aria-label": "Share links" });
  const noLinks = h("p", { class: "muted", hidden: true }, "No links yet.");
  const newLink = h("div", { id: "new-link" });

  const loadMembers = async () => {
    const result = await api.listMembers(album.album_id);
    if (!session.isCurrent(ticket)) return;
    members.replaceChildren(...result.items.map(memberRow));
  };
  const loadLinks = async () => {
    const result = await api.listLinks(album.album_id);
    if (!session.isCurrent(ticket)) return;
    links.replaceChildren(...result.items.map(linkRow));
    noLinks.hidden = result.items.length > 0;
  };
  const failed = (error) => {
    if (session.isCurrent(ticket)) showError(error);
  };

  function memberRow(member) {
    const name = memberName(member);
    if (member.role === "owner") {
      return h("li", { dataset: { userId: member.user_id, role: "owner" } }, h("span", { class: "name" }, name), roleBadge("owner"));
    }
    const select = roleSelect(member.role, `Role of ${member.username}`);
    select.addEventListener("change", async () => {
      clearError();
      select.disabled = true;
      try {
        const updated = await api.updateMember(album.album_id, member.user_id, select.value);
        member.role = updated.role;
        announce(`${member.username} is now ${updated.role === "contributor" ? "a contributor" : "a viewer"}.`);
      } catch (error) {
        select.value = member.role;
        failed(error);
      } finally {
        select.disabled = false;
      }
    });
    const remove = h("button", { type: "button", class: "link-button" }, "Remove");
    remove.setAttribute("aria-label", `Remove ${member.username}`);
    remove.addEventListener("click", async () => {
      const text = `${name} will no longer see “${album.title}”, and the photos they added leave it with them.`;
      if (!(await confirmAction({ title: "Remove member?", text, action: "Remove" }))) {
        remove.focus();
        return;
      }
      clearError();
      remove.disabled = true;
      try {
        await api.removeMember(album.album_id, member.user_id);
        await loadMembers();
        announce(`Removed ${member.username}.`);
      } catch (error) {
        remove.disabled = false;
        failed(error);
      }
    });
    return h("li", { dataset: { userId: member.user_id, role: member.role } }, h("span", { class: "name" }, name), select, remove);
  }

  function linkRow(link) {
    const revoke = h("button", { type: "button", class: "link-button" }, "Revoke");
    revoke.addEventListener("click", async () => {
      const text = "Anyone opening this link will be told it no longer works. This cannot be undone.";
      if (!(await confirmAction({ title: "Revoke link?", text, action: "Revoke" }))) {
        revoke.focus();
        return;
      }
      clearError();
      revoke.disabled = true;
      try {
        await api.revokeLink(album.album_id, link.link_id);
        await loadLinks();
        announce("Link revoked.");
      } catch (error) {
        revoke.disabled = false;
        failed(error);
      }
    });
    const facts = [
      ["Created", formatDate(link.created_at)],
      ["Expires", link.expires_at ? formatDate(link.expires_at) : "never"],
      ["Password", link.has_password ? "yes" : "no"],
      ["Download", link.allow_download ? "yes" : "no"],
    ];
    return h(
      "li",
      { dataset: { linkId: link.link_id } },
      h("dl", { class: "inline-facts" }, ...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
      revoke,
    );
  }

  // Add a member by username.
  const username = h("input", { name: "username", required: true, autocomplete: "off" });
  const role = roleSelect("viewer");
  const addForm = h(
    "form",
    { class: "inline-form", "aria-label": "Add a member" },
    field("Username to share with", username),
    field("Role", role),
    h("button", { type: "submit", class: "primary" }, "Add member"),
  );
  addForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    const wanted = username.value.trim();
    busy(addForm, true);
    try {
      const member = await api.addMember(album.album_id, wanted, role.value);
      await loadMembers();
      username.value = "";
      announce(`Shared with ${member.username} as ${member.role === "contributor" ? "a contributor" : "a viewer"}.`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) failed(new Error(`There is no PhotoSky user named “${wanted}”.`));
      else failed(error);
    } finally {
      busy(addForm, false);
    }
  });

  // Create a link.
  const expires = h("input", { name: "expires_at", type: "datetime-local" });
  const password = h("input", {
    name: "password",
    type: "password",
    autocomplete: "new-password",
    minlength: session.limits.link_password_min,
    maxlength: session.limits.link_password_max,
  });
  const download = h("input", { name: "allow_download", type: "checkbox" });
  const linkForm = h(
    "form",
    { class: "inline-form", "aria-label": "Create a share link" },
    field("Link expires (optional)", expires, "Empty: the link works until you revoke it."),
    field("Link password (optional)", password, "Visitors must type it to see the album."),
    h("label", { class: "check" }, download, " Allow downloading originals"),
    h("button", { type: "submit", class: "primary" }, "Create link"),
  );
  linkForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError();
    const options = { allow_download: download.checked };
    if (expires.value) {
      const when = new Date(expires.value); // datetime-local is the visitor's local time
      if (Number.isNaN(when.getTime())) {
        failed(new Error("Link expires: enter a valid date and time."));
        return;
      }
      options.expires_at = when.toISOString();
    }
    if (password.value) options.password = password.value;
    busy(linkForm, true);
    try {
      const link = await api.createLink(album.album_id, options);
      if (!session.isCurrent(ticket)) return;
      linkForm.reset();
      newLink.replaceChildren(createdLink(link));
      newLink.querySelector("input").focus();
      announce("Link created. Copy it now: it is shown only once.");
      await loadLinks();
    } catch (error) {
      failed(error);
    } finally {
      busy(linkForm, false);
    }
  });

  loadMembers().catch(failed);
  loadLinks().catch(failed);
  return h(
    "section",
    { class: "card", id: "share", "aria-labelledby": "share-title" },
    h("h2", { id: "share-title" }, "Sharing"),
    h("h3", {}, "Members"),
    members,
    addForm,
    h("h3", {}, "Links"),
    links,
    noLinks,
    newLink,
    linkForm,
  );
}

function createdLink(link) {
  const url = h("input", { type: "text", readonly: true, value: publicLinkUrl(link.token), id: "new-link-url", class: "link-url" });
  url.addEventListener("focus", () => url.select());
  const copy = h("button", { type: "button" }, "Copy link");
  copy.addEventListener("click", () => copyField(url));
  return h(
    "div",
    { class: "note new-link" },
    field("New link", url, "Anyone with this link can see the album. It is shown only this once: copy it now."),
    copy,
  );
}
