// Every GraphQL document the console sends, in one place, and the one function that sends
// them. The console is a client of the public API only: POST /graphql with the key header,
// and GET /export for downloads. The key lives in sessionStorage and nowhere else.

const KEY = "p360.console.key";

export const session = {
  key: () => sessionStorage.getItem(KEY),
  signIn: (key) => sessionStorage.setItem(KEY, key),
  signOut: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join("; "));
    this.errors = errors;
    this.code = errors[0]?.extensions?.code ?? "ERROR";
    this.field = errors[0]?.extensions?.field ?? null;
  }
}

export async function gql(query, variables = {}) {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      Accept: "application/json",
      Authorization: `Bearer ${session.key() ?? ""}`,
    },
    body: JSON.stringify({ query, variables }),
  });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError([{ message: `The server answered ${response.status}`, extensions: {} }]);
  }
  if (body.errors?.length) throw new ApiError(body.errors);
  return body.data;
}

export async function download(path, filename) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${session.key()}` } });
  if (!response.ok) {
    let message = `Export failed (${response.status})`;
    try {
      const body = await response.json();
      message = body.errors?.[0]?.message ?? message;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError([{ message, extensions: {} }]);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export const VIEWER = `query Viewer { viewer { tenant role keyName canList canEdit canAdminister } }`;

export const DEFINITIONS = `query Definitions {
  propertyDefinitions { name type description system createdAt }
}`;

// The profile list: the README's dashboard selection, a page of 50. It costs the dashboard's
// constant number of database commands (tests/integration/test_console_queries.py).
export const PROFILES_PAGE = `query ConsoleProfiles($where: ProfileFilter, $search: String, $after: String) {
  profiles(where: $where, search: $search, first: 50, after: $after) {
    edges { cursor node {
      id userId firstName lastName email phone country tags lastChannel
      identities { type value channels }
      events { name count firstSeen lastSeen }
      contactCard { displayName phone email complete }
      activity(first: 5) { edges { node {
        __typename
        ... on Event { name occurredAt }
        ... on Conversation { id kind status subject startedAt }
      } } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}`;

export const PROFILE_COUNT = `query ConsoleProfileCount($where: ProfileFilter, $search: String) {
  profileCount(where: $where, search: $search)
}`;

const PROFILE_FIELDS = `
  id userId identified properties tags createdAt updatedAt mergedFrom
  contactCard { displayName userId phone email complete }
  identities { type value channels }
  events { name count firstSeen lastSeen }
  mergeHistory { mergeId sourceId at trigger actor undoneAt undoneBy }
  eventHistory(first: 20) { edges { node { id name occurredAt properties } } }
  activity(first: 30) { edges { node {
    __typename
    ... on Event { id name occurredAt }
    ... on Conversation { id conversationId channel kind status subject startedAt closedAt }
  } } }`;

export const PROFILE = `query ConsoleProfile($id: ID!) {
  profile(id: $id) { ${PROFILE_FIELDS} }
  mergeSuggestions(profileId: $id) {
    matchedOn score
    profile { id userId properties tags contactCard { displayName complete }
      identities { type value channels } }
  }
}`;

export const UPDATE_PROFILE = `mutation ConsoleUpdateProfile($input: UpdateProfileInput!) {
  updateProfile(input: $input) { profile { id } }
}`;

export const MERGE_PROFILES = `mutation ConsoleMerge($input: MergeProfilesInput!) {
  mergeProfiles(input: $input) { mergedProfileId profile { id } }
}`;

export const DETACH_IDENTITY = `mutation ConsoleDetach($input: DetachIdentityInput!) {
  detachIdentity(input: $input) { profile { id } detached { id } }
}`;

export const DEFINE_PROPERTY = `mutation ConsoleDefine($input: DefinePropertyInput!) {
  defineProperty(input: $input) { propertyDefinition { name type } }
}`;

const SAVED_FILTER = `
  property { name op value } tag event { name did minCount maxCount withinLastDays }`;
// A saved filter is read three levels deep: the builder nests groups that far.
const FILTER_TREE = `${SAVED_FILTER}
  not { ${SAVED_FILTER} and { ${SAVED_FILTER} } or { ${SAVED_FILTER} } }
  and { ${SAVED_FILTER} not { ${SAVED_FILTER} } and { ${SAVED_FILTER} } or { ${SAVED_FILTER} } }
  or { ${SAVED_FILTER} not { ${SAVED_FILTER} } and { ${SAVED_FILTER} } or { ${SAVED_FILTER} } }`;

export const SEGMENTS = `query ConsoleSegments {
  segments { id name description count updatedAt }
}`;

export const SEGMENT = `query ConsoleSegment($id: ID!, $after: String) {
  segment(id: $id) {
    id name description count
    filter { ${FILTER_TREE} }
    members(first: 50, after: $after) {
      edges { node { id userId contactCard { displayName phone email complete } tags lastChannel } }
      pageInfo { hasNextPage endCursor }
    }
  }
}`;

export const CREATE_SEGMENT = `mutation ConsoleCreateSegment($input: CreateSegmentInput!) {
  createSegment(input: $input) { segment { id count } }
}`;

export const UPDATE_SEGMENT = `mutation ConsoleUpdateSegment($input: UpdateSegmentInput!) {
  updateSegment(input: $input) { segment { id count } }
}`;

const CHANGE = `property item value sourceValue`;

export const UNMERGE_PREVIEW = `query ConsoleUnmergePreview($mergeId: ID!) {
  unmergePreview(mergeId: $mergeId) {
    mergeId sourceId survivorId sourceUserId userIdReturns eventCount conversationCount
    identities { type value channels }
    removed { ${CHANGE} }
    kept { ${CHANGE} }
  }
}`;

export const UNMERGE_PROFILES = `mutation ConsoleUnmerge($input: UnmergeProfilesInput!) {
  unmergeProfiles(input: $input) { mergeId source { id } survivor { id } }
}`;
