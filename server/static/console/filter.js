// The filter builder: the whole filter language (property conditions with the operators each
// type allows, tags, event conditions with counts and windows, and/or/not groups), as a tree
// of plain objects that turns into a ProfileFilter and back from a saved filter.

import { field, h, select } from "./dom.js";

const EVERY = ["EQ", "NE", "IN", "EXISTS", "NOT_EXISTS"];
const RANGE = ["GT", "GTE", "LT", "LTE", "BETWEEN"];
export const OPERATORS = {
  STRING: [...EVERY, "CONTAINS"],
  EMAIL: [...EVERY, "CONTAINS"],
  PHONE: [...EVERY, "CONTAINS"],
  URL: [...EVERY, "CONTAINS"],
  LIST: [...EVERY, "CONTAINS"],
  NUMBER: [...EVERY, ...RANGE],
  TIME: [...EVERY, ...RANGE],
  DATE: [...EVERY, ...RANGE, "WITHIN_LAST_DAYS"],
  DATETIME: [...EVERY, ...RANGE, "WITHIN_LAST_DAYS"],
  BOOLEAN: ["EQ", "NE", "EXISTS", "NOT_EXISTS"],
};
const LABELS = {
  EQ: "is", NE: "is not", IN: "is one of (comma-separated)", EXISTS: "has a value",
  NOT_EXISTS: "has no value", CONTAINS: "contains", GT: ">", GTE: "≥", LT: "<", LTE: "≤",
  BETWEEN: "between (low, high)", WITHIN_LAST_DAYS: "within the last N days",
};

export const emptyGroup = () => ({ kind: "and", negate: false, children: [] });

function scalar(text, type) {
  const trimmed = text.trim();
  if (type === "NUMBER" && trimmed !== "" && !Number.isNaN(Number(trimmed))) return Number(trimmed);
  if (type === "BOOLEAN") return trimmed === "true" ? true : trimmed === "false" ? false : trimmed;
  return trimmed;
}

function conditionValue(node, type) {
  const text = node.value ?? "";
  switch (node.op) {
    case "EXISTS":
    case "NOT_EXISTS":
      return null;
    case "IN":
    case "BETWEEN":
      return text.split(",").map((part) => scalar(part, type));
    case "WITHIN_LAST_DAYS":
      return scalar(text, "NUMBER");
    default:
      return scalar(text, type);
  }
}

const int = (text) => (text === "" || text === undefined || text === null ? null : Number(text));

// The builder's tree as a ProfileFilter (null when it holds no condition).
export function toFilter(node, types) {
  let built;
  if (node.kind === "and" || node.kind === "or") {
    const parts = node.children.map((c) => toFilter(c, types)).filter(Boolean);
    if (parts.length === 0) return null;
    built = parts.length === 1 ? parts[0] : { [node.kind]: parts };
  } else if (node.kind === "property") {
    if (!node.name) return null;
    built = { property: { name: node.name, op: node.op, value: conditionValue(node, types[node.name]) } };
  } else if (node.kind === "tag") {
    if (!node.tag) return null;
    built = { tag: node.tag.trim() };
  } else {
    if (!node.name) return null;
    built = {
      event: {
        name: node.name.trim(), did: node.did,
        minCount: int(node.minCount), maxCount: int(node.maxCount),
        withinLastDays: int(node.withinLastDays),
      },
    };
  }
  return node.negate ? { not: built } : built;
}

const text = (value) => (value === null || value === undefined ? "" : Array.isArray(value) ? value.join(", ") : String(value));

// A saved filter (Segment.filter) as the builder's tree.
export function fromFilter(saved) {
  const root = emptyGroup();
  if (saved) root.children.push(fromNode(saved));
  return root;
}

function fromNode(saved, negate = false) {
  if (saved.not) return fromNode(saved.not, !negate);
  if (saved.and || saved.or) {
    const kind = saved.and ? "and" : "or";
    return { kind, negate, children: (saved.and ?? saved.or).map((c) => fromNode(c)) };
  }
  if (saved.property) {
    const { name, op, value } = saved.property;
    return { kind: "property", negate, name, op, value: text(value) };
  }
  if (saved.tag !== null && saved.tag !== undefined) return { kind: "tag", negate, tag: saved.tag };
  const e = saved.event;
  if (!e) throw new Error("This filter nests deeper than the console reads; edit it through the API");
  return {
    kind: "event", negate, name: e.name, did: e.did,
    minCount: text(e.minCount), maxCount: text(e.maxCount), withinLastDays: text(e.withinLastDays),
  };
}

// The builder's controls; `changed` is called after every edit.
export function builder(root, definitions, changed) {
  const container = h("fieldset", { class: "builder" }, h("legend", {}, "Filter"));
  const redraw = () => {
    container.replaceChildren(h("legend", {}, "Filter"), groupView(root, null));
    changed();
  };
  const types = Object.fromEntries(definitions.map((d) => [d.name, d.type]));

  function remove(parent, node) {
    parent.children.splice(parent.children.indexOf(node), 1);
    redraw();
  }

  function negation(node) {
    return field("not", h("input", {
      type: "checkbox", checked: node.negate,
      onchange: (e) => { node.negate = e.target.checked; changed(); },
    }));
  }

  function groupView(group, parent) {
    const add = (node) => () => { group.children.push(node()); redraw(); };
    return h(
      "div",
      { class: "group", role: "group", "aria-label": parent ? "Condition group" : "All conditions" },
      h("div", { class: "row" },
        field("Match", select([["and", "all of"], ["or", "any of"]], group.kind, {
          onchange: (e) => { group.kind = e.target.value; changed(); },
        })),
        parent && negation(group),
        parent && h("button", { type: "button", class: "link", onclick: () => remove(parent, group) }, "Remove group"),
      ),
      group.children.map((child) =>
        child.children ? groupView(child, group) : conditionView(child, group)),
      h("div", { class: "row adders" },
        h("button", { type: "button", onclick: add(() => ({ kind: "property", negate: false, name: definitions[0]?.name ?? "", op: "EQ", value: "" })) }, "+ Property"),
        h("button", { type: "button", onclick: add(() => ({ kind: "tag", negate: false, tag: "" })) }, "+ Tag"),
        h("button", { type: "button", onclick: add(() => ({ kind: "event", negate: false, name: "", did: true, minCount: "", maxCount: "", withinLastDays: "" })) }, "+ Event"),
        h("button", { type: "button", onclick: add(() => ({ kind: "or", negate: false, children: [] })) }, "+ Group"),
      ),
    );
  }

  function input(node, key, label, attrs = {}) {
    return field(label, h("input", {
      value: node[key] ?? "", ...attrs,
      oninput: (e) => { node[key] = e.target.value; changed(); },
    }));
  }

  function conditionView(node, parent) {
    const parts = [negation(node)];
    if (node.kind === "property") {
      const ops = OPERATORS[types[node.name]] ?? EVERY;
      if (!ops.includes(node.op)) node.op = ops[0];
      parts.push(
        field("Property", select(definitions.map((d) => [d.name, `${d.name} (${d.type.toLowerCase()})`]), node.name, {
          onchange: (e) => { node.name = e.target.value; redraw(); },
        })),
        field("Operator", select(ops.map((op) => [op, LABELS[op]]), node.op, {
          onchange: (e) => { node.op = e.target.value; redraw(); },
        })),
      );
      if (node.op !== "EXISTS" && node.op !== "NOT_EXISTS") parts.push(input(node, "value", "Value"));
    } else if (node.kind === "tag") {
      parts.push(input(node, "tag", "Has tag"));
    } else {
      parts.push(
        input(node, "name", "Event"),
        field("Did", select([["true", "did"], ["false", "did not"]], String(node.did), {
          onchange: (e) => { node.did = e.target.value === "true"; changed(); },
        })),
        input(node, "minCount", "At least (times)", { type: "number", min: 0, inputmode: "numeric" }),
        input(node, "maxCount", "At most (times)", { type: "number", min: 0, inputmode: "numeric" }),
        input(node, "withinLastDays", "In the last (days)", { type: "number", min: 1, inputmode: "numeric" }),
      );
    }
    return h("div", { class: "row condition", role: "group", "aria-label": `${node.kind} condition` },
      parts,
      h("button", { type: "button", class: "link", onclick: () => remove(parent, node) }, "Remove"));
  }

  container.append(groupView(root, null));
  return { element: container, filter: () => toFilter(root, types) };
}

