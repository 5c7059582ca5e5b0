// The console: sign-in, profiles, a profile, segments, properties. Hash routes
// (#/profiles, #/profile/<id>, #/segments, #/segment/<id>, #/properties) so the page is one
// static file and the back button works.

import * as api from "./api.js";
import { field, h, select, show, table, when } from "./dom.js";
import { builder, emptyGroup, fromFilter } from "./filter.js";

const main = document.getElementById("main");
const who = document.getElementById("who");
const nav = document.getElementById("nav");
let viewer = null;
let definitions = [];

function status(message, kind = "info") {
  return h("p", { class: `status ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
}

function render(title, ...content) {
  document.title = `${title} · profile360 console`;
  main.replaceChildren(h("h1", {}, title), ...content);
}

async function load(work) {
  try {
    return await work();
  } catch (error) {
    if (error instanceof api.ApiError && error.code === "UNAUTHENTICATED") {
      signOut();
      return null;
    }
    main.append(status(error.message, "error"));
    return null;
  }
}

function signOut() {
  api.session.signOut();
  viewer = null;
  location.hash = "";
  route();
}

function header() {
  nav.replaceChildren();
  who.replaceChildren();
  if (!viewer) return;
  const links = [["#/profiles", "Profiles"], ["#/segments", "Segments"], ["#/properties", "Properties"]];
  nav.append(...links.map(([href, text]) => h("a", { href }, text)));
  who.append(
    h("span", { class: "badge", "data-testid": "tenant" }, `tenant ${viewer.tenant}`),
    h("span", { class: "badge", "data-testid": "role" }, `role ${viewer.role.toLowerCase()}`),
    h("button", { type: "button", onclick: signOut }, "Sign out"),
  );
}

function signInPage(message = null) {
  const key = h("input", { type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h("form", {
    class: "card narrow",
    onsubmit: async (event) => {
      event.preventDefault();
      api.session.signIn(key.value.trim());
      try {
        await start();
      } catch (error) {
        api.session.signOut();
        signInPage(error.message);
      }
    },
  },
  field("API key", key, h("small", {}, "Kept in this tab only (sessionStorage); closing the tab forgets it.")),
  h("button", { type: "submit" }, "Sign in"),
  message && status(message, "error"));
  render("Sign in", form);
  key.focus();
}

async function start() {
  const me = (await api.gql(api.VIEWER)).viewer;
  if (!me.canList) {
    throw new Error(`A key with role ${me.role.toLowerCase()} cannot use the console: use a viewer, agent or admin key`);
  }
  viewer = me;
  definitions = (await api.gql(api.DEFINITIONS)).propertyDefinitions;
  header();
  if (!location.hash || location.hash === "#") location.hash = "#/profiles";
  else route();
}

// ---------------------------------------------------------------- profiles

const list = { search: "", tree: emptyGroup(), cursors: [null] };

function profilesPage() {
  const count = h("p", { class: "count", "aria-live": "polite", "data-testid": "profile-count" });
  const results = h("div", { "aria-live": "polite" });
  const search = h("input", { type: "search", value: list.search, placeholder: "name, email, phone or userId" });
  const filters = builder(list.tree, definitions, () => {});
  const refresh = async (cursorIndex = 0) => {
    list.search = search.value.trim();
    list.cursors = list.cursors.slice(0, cursorIndex + 1);
    const variables = { where: filters.filter(), search: list.search || null, after: list.cursors[cursorIndex] };
    results.replaceChildren(status("Loading…"));
    try {
      const [page, total] = await Promise.all([
        api.gql(api.PROFILES_PAGE, variables),
        api.gql(api.PROFILE_COUNT, { where: variables.where, search: variables.search }),
      ]);
      const n = total.profileCount;
      count.textContent = `${n} ${n === 1 ? "profile" : "profiles"}`;
      const { edges, pageInfo } = page.profiles;
      if (pageInfo.hasNextPage) list.cursors[cursorIndex + 1] = pageInfo.endCursor;
      results.replaceChildren(
        edges.length ? profileTable(edges.map((e) => e.node)) : status("No profile matches."),
        h("nav", { class: "row pager", "aria-label": "Pages" },
          h("button", { type: "button", disabled: cursorIndex === 0, onclick: () => refresh(cursorIndex - 1) }, "Previous page"),
          h("span", {}, `Page ${cursorIndex + 1}`),
          h("button", { type: "button", disabled: !pageInfo.hasNextPage, onclick: () => refresh(cursorIndex + 1) }, "Next page")),
      );
    } catch (error) {
      results.replaceChildren(status(error.message, "error"));
    }
  };
  const form = h("form", { class: "card", role: "search", onsubmit: (e) => { e.preventDefault(); refresh(0); } },
    field("Search", search), filters.element, h("button", { type: "submit" }, "Apply"));
  render("Profiles", form, count, results);
  refresh(0);
}

function profileTable(profiles) {
  return table(
    ["Name", "userId", "Email", "Phone", "Country", "Channels", "Tags", "Recent"],
    profiles.map((p) => [
      h("a", { href: `#/profile/${encodeURIComponent(p.id)}` }, p.contactCard.displayName ?? "(anonymous)"),
      show(p.userId), show(p.email), show(p.phone), show(p.country),
      show([...new Set(p.identities.flatMap((i) => i.channels))].map((c) => c.toLowerCase())),
      show(p.tags),
      show(p.activity.edges.slice(0, 2).map(({ node }) => node.__typename === "Event" ? node.name : `${node.kind.toLowerCase()} ${node.status.toLowerCase()}`)),
    ]),
    "Profiles on this page",
  );
}

// ---------------------------------------------------------------- a profile

function parseValue(text, type) {
  const t = text.trim();
  if (type === "NUMBER" && t !== "" && !Number.isNaN(Number(t))) return Number(t);
  if (type === "BOOLEAN" && (t === "true" || t === "false")) return t === "true";
  if (type === "LIST") return t.split(",").map((x) => x.trim()).filter(Boolean);
  return t;
}

async function profilePage(id) {
  const data = await load(() => api.gql(api.PROFILE, { id }));
  if (!data) return;
  const p = data.profile;
  if (!p) return render("Profile not found", status(`No profile ${id} in this tenant.`, "error"));
  if (p.id !== id) {
    // A merged-away id answers with its survivor: show the survivor under its own id.
    history.replaceState(null, "", `#/profile/${encodeURIComponent(p.id)}`);
  }
  const canEdit = viewer.canEdit;
  const reload = () => profilePage(p.id);
  const card = p.contactCard;
  const contact =
    h("section", { class: "card contact", "aria-labelledby": "contact" },
      h("h2", { id: "contact" }, "Contact card"),
      h("dl", {},
        h("dt", {}, "Name"), h("dd", {}, show(card.displayName)),
        h("dt", {}, "userId"), h("dd", {}, show(card.userId)),
        h("dt", {}, "Phone"), h("dd", {}, show(card.phone)),
        h("dt", {}, "Email"), h("dd", {}, show(card.email)),
        h("dt", {}, "Profile id"), h("dd", { class: "mono" }, p.id)),
      card.complete
        ? h("p", { class: "ok" }, "Complete")
        : h("p", { class: "warn" }, `Missing: ${["displayName", "phone", "email"].filter((k) => !card[k]).map((k) => (k === "displayName" ? "name" : k)).join(", ")}`));
  const left = [contact, tagsSection(p, canEdit, reload), identitiesSection(p, canEdit, reload),
    suggestionsSection(p, data.mergeSuggestions, canEdit), mergesSection(p, canEdit)];
  const right = [propertiesSection(p, canEdit, reload), eventsSection(p), activitySection(p)];
  render(card.displayName ?? "Anonymous profile",
    h("div", { class: "columns" }, h("div", { class: "column" }, left), h("div", { class: "column" }, right)));
}

// Set by the service, never by hand: userId by identify, tags in the Tags section.
const READ_ONLY = new Set(["userId", "createdAt", "updatedAt", "lastSession", "lastChannel", "tags"]);

function propertiesSection(p, canEdit, reload) {
  const rows = definitions
    .filter((d) => d.name !== "tags")
    .map((d) => {
      const value = p.properties[d.name];
      const cell = h("div", { class: "value" }, show(value));
      if (canEdit && !READ_ONLY.has(d.name)) {
        cell.append(h("button", {
          type: "button", class: "link", "aria-label": `Edit ${d.name}`,
          onclick: () => editValue(cell, p, d, value, reload),
        }, "Edit"));
      }
      return [h("span", {}, d.name), d.type.toLowerCase(), cell];
    });
  return h("section", { class: "card", "aria-labelledby": "props" },
    h("h2", { id: "props" }, "Properties"), table(["Property", "Type", "Value"], rows));
}

const HINTS = {
  NUMBER: "a number", DATE: "YYYY-MM-DD", DATETIME: "YYYY-MM-DD hh:mm:ss (UTC)", TIME: "hh:mm",
  LIST: "comma-separated", BOOLEAN: "true or false", PHONE: "+country number", EMAIL: "name@domain",
  URL: "https://…",
};

function editValue(cell, p, definition, value, reload) {
  const errorId = `error-${definition.name}`;
  const text = value === null || value === undefined ? "" : Array.isArray(value) ? value.join(", ") : String(value);
  const input = h("input", { value: text, "aria-describedby": errorId, placeholder: HINTS[definition.type] ?? "" });
  const error = h("p", { id: errorId, class: "field-error", role: "alert" });
  const form = h("form", {
    class: "inline",
    onsubmit: async (e) => {
      e.preventDefault();
      const raw = input.value;
      const change = raw.trim() === "" ? { unset: [definition.name] } : { set: { [definition.name]: parseValue(raw, definition.type) } };
      try {
        await api.gql(api.UPDATE_PROFILE, { input: { id: p.id, ...change } });
        reload();
      } catch (err) {
        input.setAttribute("aria-invalid", "true");
        error.textContent = err.message;
        input.focus();
      }
    },
  },
  h("label", { for: `edit-${definition.name}`, class: "sr-only" }, `New value of ${definition.name}`),
  input,
  h("button", { type: "submit" }, "Save"),
  h("button", { type: "button", class: "link", onclick: reload }, "Cancel"),
  error);
  input.id = `edit-${definition.name}`;
  cell.replaceChildren(form);
  input.focus();
}

function tagsSection(p, canEdit, reload) {
  const update = (change) => load(async () => { await api.gql(api.UPDATE_PROFILE, { input: { id: p.id, ...change } }); reload(); });
  const tags = h("ul", { class: "tags" }, p.tags.map((tag) => h("li", {}, tag,
    canEdit && h("button", { type: "button", class: "link", "aria-label": `Remove tag ${tag}`, onclick: () => update({ removeTags: [tag] }) }, "×"))));
  const input = h("input", {});
  return h("section", { class: "card", "aria-labelledby": "tags" },
    h("h2", { id: "tags" }, "Tags"),
    p.tags.length ? tags : h("p", {}, "No tags."),
    canEdit && h("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); if (input.value.trim()) update({ addTags: [input.value.trim()] }); } },
      field("New tag", input), h("button", { type: "submit" }, "Add tag")));
}

function identitiesSection(p, canEdit, reload) {
  const result = h("div", { "aria-live": "polite" });
  const detach = (channel, senderId) => async () => {
    try {
      const data = await api.gql(api.DETACH_IDENTITY, { input: { profileId: p.id, channel, senderId } });
      const newId = data.detachIdentity.detached.id;
      await reload();
      main.querySelector("#identities")?.after(status(`Detached ${senderId} (${channel.toLowerCase()}) into a new profile`, "ok"),
        h("a", { href: `#/profile/${encodeURIComponent(newId)}` }, "Open the detached profile"));
    } catch (err) {
      result.replaceChildren(status(err.message, "error"));
    }
  };
  const rows = p.identities.map((i) => [
    i.type.toLowerCase(), h("span", { class: "mono" }, i.value), show(i.channels.map((c) => c.toLowerCase())),
    canEdit && i.type !== "USER_ID" && i.channels.length
      ? h("div", {}, i.channels.map((c) => h("button", { type: "button", onclick: detach(c, i.value), "aria-label": `Detach ${i.value} on ${c.toLowerCase()}` }, `Detach (${c.toLowerCase()})`)))
      : "",
  ]);
  return h("section", { class: "card", "aria-labelledby": "identities" },
    h("h2", { id: "identities" }, "Identities"),
    table(["Type", "Value", "Channels", canEdit ? "Actions" : ""], rows), result);
}

const GROUPS = [["country", "timezone"], ["firstName", "lastName"], ["city", "latitude", "longitude"]];
const LAST_CONTACT = ["lastChannel", "lastSession"];

// What merging `source` into `target` does (domain/merge.py's rule): missing values are
// filled (a group such as first and last name only whole, into a profile with none of it),
// lists are unioned, the target keeps every value it has.
export function mergePreview(target, source) {
  const fills = [];
  const unions = [];
  const grouped = new Set(GROUPS.flat());
  const has = (v) => v !== null && v !== undefined;
  for (const [name, value] of Object.entries(source.properties)) {
    if (!has(value) || LAST_CONTACT.includes(name) || grouped.has(name)) continue;
    if (Array.isArray(value)) {
      const added = value.filter((v) => !(target.properties[name] ?? []).includes(v));
      if (added.length) unions.push([name, added]);
    } else if (!has(target.properties[name])) {
      fills.push([name, value]);
    }
  }
  for (const group of GROUPS) {
    if (group.some((n) => has(source.properties[n])) && !group.some((n) => has(target.properties[n]))) {
      for (const n of group) if (has(source.properties[n])) fills.push([n, source.properties[n]]);
    }
  }
  const known = new Set(target.identities.map((i) => `${i.type}:${i.value}`));
  const identities = source.identities.filter((i) => !known.has(`${i.type}:${i.value}`));
  if (identities.length) unions.push(["identities", identities.map((i) => i.value)]);
  return { fills, unions };
}

function suggestionsSection(p, suggestions, canEdit) {
  const area = h("div", {});
  let button = null;
  const confirm = (s, opener) => {
    button = opener;
    const { fills, unions } = mergePreview(p, s.profile);
    const dialog = h("div", { class: "confirm", role: "dialog", "aria-modal": "false", "aria-labelledby": "confirm-title" },
      h("h3", { id: "confirm-title" }, `Merge ${s.profile.contactCard.displayName ?? s.profile.id} into this profile?`),
      h("p", {}, "This profile survives; the other becomes a redirect to it."),
      h("h4", {}, "Values it fills"),
      fills.length ? h("ul", { "data-testid": "fills" }, fills.map(([n, v]) => h("li", {}, `${n}: ${show(v)}`))) : h("p", {}, "None (this profile already has them)."),
      h("h4", {}, "Lists it unions"),
      unions.length ? h("ul", { "data-testid": "unions" }, unions.map(([n, v]) => h("li", {}, `${n}: + ${show(v)}`))) : h("p", {}, "None."),
      h("div", { class: "row" },
        h("button", { type: "button", class: "danger", onclick: async () => {
          try {
            await api.gql(api.MERGE_PROFILES, { input: { targetId: p.id, sourceId: s.profile.id } });
            await profilePage(p.id);
            main.querySelector("#merges")?.after(status(`Merged ${s.profile.id} into this profile`, "ok"));
          } catch (err) {
            dialog.append(status(err.message, "error"));
          }
        } }, "Confirm merge"),
        h("button", { type: "button", onclick: () => area.replaceChildren() }, "Cancel")));
    dialog.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        area.replaceChildren();
        button.focus();
      }
    });
    area.replaceChildren(dialog);
    dialog.querySelector("button").focus();
  };
  const rows = suggestions.map((s) => [
    h("a", { href: `#/profile/${encodeURIComponent(s.profile.id)}` }, s.profile.contactCard.displayName ?? "(anonymous)"),
    show(s.matchedOn.map((m) => m.toLowerCase().replace("_", " "))),
    s.score.toFixed(2),
    canEdit ? h("button", { type: "button", onclick: (e) => confirm(s, e.currentTarget) }, "Merge…") : "",
  ]);
  return h("section", { class: "card", "aria-labelledby": "suggestions" },
    h("h2", { id: "suggestions" }, "Merge suggestions"),
    rows.length ? table(["Profile", "Matched on", "Score", ""], rows) : h("p", {}, "No suggestions."),
    area);
}

function eventsSection(p) {
  return h("section", { class: "card", "aria-labelledby": "events" },
    h("h2", { id: "events" }, "Events"),
    p.events.length
      ? table(["Event", "Count", "First", "Last"], p.events.map((e) => [e.name, e.count, when(e.firstSeen), when(e.lastSeen)]))
      : h("p", {}, "No events."),
    h("h3", {}, "History"),
    h("ol", { class: "timeline" }, p.eventHistory.edges.map(({ node }) =>
      h("li", {}, h("time", { datetime: node.occurredAt }, when(node.occurredAt)), ` ${node.name} `,
        Object.keys(node.properties ?? {}).length ? h("code", {}, JSON.stringify(node.properties)) : ""))));
}

function activitySection(p) {
  const items = p.activity.edges.map(({ node }) => node.__typename === "Event"
    ? h("li", {}, h("time", { datetime: node.occurredAt }, when(node.occurredAt)), ` event ${node.name}`)
    : h("li", {}, h("time", { datetime: node.startedAt }, when(node.startedAt)),
      ` ${node.kind.toLowerCase()} on ${node.channel.toLowerCase()}: ${node.subject ?? node.conversationId} — ${node.status.toLowerCase()}`));
  return h("section", { class: "card", "aria-labelledby": "activity" },
    h("h2", { id: "activity" }, "Activity"),
    items.length ? h("ol", { class: "timeline" }, items) : h("p", {}, "No activity."));
}

function change(c) {
  return c.item !== null && c.item !== undefined ? `${c.property}: ${c.item}` : `${c.property}: ${show(c.sourceValue)}`;
}

function mergesSection(p, canEdit) {
  const area = h("div", {});
  const unmerge = (entry) => async (event) => {
    const opener = event.currentTarget;
    let preview;
    try {
      preview = (await api.gql(api.UNMERGE_PREVIEW, { mergeId: entry.mergeId })).unmergePreview;
    } catch (err) {
      area.replaceChildren(status(err.message, "error"));
      return;
    }
    const close = () => { area.replaceChildren(); opener.focus(); };
    const dialog = h("div", { class: "confirm", role: "dialog", "aria-modal": "false", "aria-labelledby": "unmerge-title" },
      h("h3", { id: "unmerge-title" }, "Undo this merge?"),
      h("p", {}, `The merged-away profile comes back with its id${preview.userIdReturns ? ` and userId ${preview.sourceUserId}` : ""}, `
        + `its ${preview.eventCount} events and ${preview.conversationCount} conversations.`),
      h("h4", {}, "Identities that go back"),
      preview.identities.length ? h("ul", {}, preview.identities.map((i) => h("li", {}, `${i.type.toLowerCase()} ${i.value}`))) : h("p", {}, "None."),
      h("h4", {}, "Removed from this profile"),
      preview.removed.length ? h("ul", { "data-testid": "removed" }, preview.removed.map((c) => h("li", {}, change(c)))) : h("p", {}, "Nothing."),
      h("h4", {}, "Kept (changed since the merge)"),
      preview.kept.length ? h("ul", { "data-testid": "kept" }, preview.kept.map((c) => h("li", {}, `${c.property}: ${show(c.value ?? c.item)}`))) : h("p", {}, "Nothing."),
      h("div", { class: "row" },
        h("button", { type: "button", class: "danger", onclick: async () => {
          try {
            const done = (await api.gql(api.UNMERGE_PROFILES, { input: { mergeId: entry.mergeId } })).unmergeProfiles;
            await profilePage(p.id);
            main.querySelector("#merges")?.after(status("Merge undone", "ok"),
              h("a", { href: `#/profile/${encodeURIComponent(done.source.id)}` }, "Open the profile that came back"));
          } catch (err) {
            dialog.append(status(err.message, "error"));
          }
        } }, "Confirm unmerge"),
        h("button", { type: "button", onclick: close }, "Cancel")));
    dialog.addEventListener("keydown", (e) => { if (e.key === "Escape") close(); });
    area.replaceChildren(dialog);
    dialog.querySelector("button").focus();
  };
  const rows = p.mergeHistory.map((m) => [
    h("span", { class: "mono" }, m.sourceId), when(m.at), m.trigger.toLowerCase(), m.actor,
    m.undoneAt
      ? `undone ${when(m.undoneAt)} by ${m.undoneBy ?? "?"}`
      : canEdit ? h("button", { type: "button", onclick: unmerge(m), "aria-label": `Unmerge ${m.sourceId}` }, "Unmerge…") : "",
  ]);
  return h("section", { class: "card", "aria-labelledby": "merges" },
    h("h2", { id: "merges" }, "Merge history"),
    rows.length ? table(["Merged profile", "When", "Trigger", "By", ""], rows) : h("p", {}, "Never merged."),
    area);
}

// ---------------------------------------------------------------- segments

async function segmentsPage() {
  const data = await load(() => api.gql(api.SEGMENTS));
  if (!data) return;
  const rows = data.segments.map((s) => [
    h("a", { href: `#/segment/${encodeURIComponent(s.id)}` }, s.name), s.description, h("span", { "data-testid": "segment-count" }, String(s.count)), when(s.updatedAt)]);
  render("Segments",
    viewer.canAdminister && h("p", {}, h("a", { href: "#/segment/new", class: "button" }, "New segment")),
    rows.length ? table(["Segment", "Description", "Profiles now", "Updated"], rows) : h("p", {}, "No segments yet."));
}

async function segmentPage(id, after = null) {
  const creating = id === "new";
  let segment = null;
  if (!creating) {
    const data = await load(() => api.gql(api.SEGMENT, { id, after }));
    if (!data) return;
    segment = data.segment;
    if (!segment) return render("Segment not found", status(`No segment ${id}.`, "error"));
  }
  const content = [];
  if (segment) {
    content.push(h("p", { class: "count", "data-testid": "segment-count" }, `${segment.count} ${segment.count === 1 ? "profile" : "profiles"}`));
  }
  if (viewer.canAdminister) content.push(segmentForm(segment, id));
  if (segment && viewer.canAdminister) {
    const message = h("div", { "aria-live": "polite" });
    const exporter = (format) => () => load(async () => {
      await api.download(`/export?format=${format}&segment=${encodeURIComponent(segment.id)}`, `${segment.name.replace(/[^\w-]+/g, "_")}.${format}`);
      message.replaceChildren(status(`Downloaded ${format.toUpperCase()}`, "ok"));
    });
    content.push(h("div", { class: "row" },
      h("button", { type: "button", onclick: exporter("csv") }, "Export CSV"),
      h("button", { type: "button", onclick: exporter("ndjson") }, "Export NDJSON"), message));
  }
  if (segment) {
    const { edges, pageInfo } = segment.members;
    content.push(h("h2", {}, "Members"),
      edges.length ? table(["Name", "userId", "Phone", "Email", "Tags", "Last channel"], edges.map(({ node: m }) => [
        h("a", { href: `#/profile/${encodeURIComponent(m.id)}` }, m.contactCard.displayName ?? "(anonymous)"),
        show(m.userId), show(m.contactCard.phone), show(m.contactCard.email), show(m.tags), show(m.lastChannel?.toLowerCase())]))
        : h("p", {}, "No members."),
      h("nav", { class: "row pager", "aria-label": "Pages" },
        after && h("button", { type: "button", onclick: () => segmentPage(id) }, "First page"),
        pageInfo.hasNextPage && h("button", { type: "button", onclick: () => segmentPage(id, pageInfo.endCursor) }, "Next page")));
  }
  render(creating ? "New segment" : segment.name, ...content);
}

// The create or edit form; for a saved filter the builder cannot read whole, an error instead,
// so that a save never drops part of it.
function segmentForm(segment, id) {
  const creating = segment === null;
  let tree = emptyGroup();
  try {
    if (segment) tree = fromFilter(segment.filter);
  } catch (error) {
    return status(error.message, "error");
  }
  const name = h("input", { value: segment?.name ?? "", required: true });
  const description = h("input", { value: segment?.description ?? "" });
  const filters = builder(tree, definitions, () => {});
  const message = h("div", { "aria-live": "polite" });
  return h("form", {
    class: "card",
    onsubmit: async (e) => {
      e.preventDefault();
      const filter = filters.filter() ?? {};
      try {
        if (creating) {
          const made = await api.gql(api.CREATE_SEGMENT, { input: { name: name.value, description: description.value, filter } });
          location.hash = `#/segment/${encodeURIComponent(made.createSegment.segment.id)}`;
        } else {
          await api.gql(api.UPDATE_SEGMENT, { input: { id, name: name.value, description: description.value, filter } });
          segmentPage(id);
        }
      } catch (err) {
        message.replaceChildren(status(err.message, "error"));
      }
    },
  }, field("Name", name), field("Description", description), filters.element,
  h("button", { type: "submit" }, creating ? "Create segment" : "Save segment"), message);
}

// ---------------------------------------------------------------- properties

const TYPES = ["STRING", "NUMBER", "BOOLEAN", "DATE", "DATETIME", "TIME", "LIST", "PHONE", "EMAIL", "URL"];

function propertiesPage() {
  const content = [table(["Name", "Type", "Kind", "Description"], definitions.map((d) => [
    h("span", { class: "mono" }, d.name), d.type.toLowerCase(), d.system ? "system" : "custom", d.description]))];
  if (viewer.canAdminister) {
    const name = h("input", { required: true, pattern: "[A-Za-z][A-Za-z0-9_]*" });
    const type = select(TYPES.map((t) => [t, t.toLowerCase()]), "STRING");
    const description = h("input", {});
    const message = h("div", { "aria-live": "polite" });
    content.unshift(h("form", {
      class: "card row",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          await api.gql(api.DEFINE_PROPERTY, { input: { name: name.value.trim(), type: type.value, description: description.value || null } });
          definitions = (await api.gql(api.DEFINITIONS)).propertyDefinitions;
          propertiesPage();
        } catch (err) {
          message.replaceChildren(status(err.message, "error"));
        }
      },
    }, h("h2", {}, "Define a property"), field("Name", name), field("Type", type), field("Description", description),
    h("button", { type: "submit" }, "Define"), message));
  }
  render("Properties", ...content);
}

// ---------------------------------------------------------------- routing

async function route() {
  if (!api.session.key()) return signInPage();
  if (!viewer) {
    try {
      await start();
    } catch (error) {
      api.session.signOut();
      signInPage(error.message);
    }
    return;
  }
  const [, page, id] = location.hash.split("/");
  const target = id ? decodeURIComponent(id) : null;
  for (const link of nav.querySelectorAll("a")) {
    link.toggleAttribute("aria-current", link.getAttribute("href") === `#/${page === "profile" ? "profiles" : page === "segment" ? "segments" : page}`);
  }
  if (page === "profile" && target) return profilePage(target);
  if (page === "segments") return segmentsPage();
  if (page === "segment" && target) return segmentPage(target);
  if (page === "properties") return propertiesPage();
  return profilesPage();
}

window.addEventListener("hashchange", () => { route(); main.focus(); });
route();
