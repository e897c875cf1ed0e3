"""The fake GitHub's issues, issue comments (also a pull request's conversation) and reactions."""

from __future__ import annotations

from tests.fakes.github_api import Call, Endpoint, paginate
from tests.fakes.github_model import ApiError, Comment, Issue, Reaction, now_iso
from tests.fakes.github_validation import check_comment, check_reaction
from tests.fakes.http import JsonResponse

REPO = "/repos/{owner}/{repo}"


def _issue(call: Call) -> Issue:
    issue = call.the_repo.issues.get(call.param("number"))
    if issue is None:
        raise ApiError.not_found()
    return issue


def get_issue(call: Call) -> JsonResponse:
    return JsonResponse(200, call.bodies.issue(call.the_repo, _issue(call)))


def list_comments(call: Call) -> JsonResponse:
    issue = _issue(call)
    comments = [call.state.comments[i] for i in issue.comment_ids]
    since = call.incoming.query.get("since")
    if since:
        comments = [c for c in comments if c.updated_at >= since]
    return paginate(call, [call.bodies.comment(c) for c in comments])


def create_comment(call: Call) -> JsonResponse:
    issue = _issue(call)
    text = check_comment(call.json())
    comment = Comment(id=call.state.next_id("comment"), repo=call.the_repo.full_name,
                      issue_number=issue.number, body=text, user=call.state.user(call.actor.login or "ghost"),
                      app_id=call.actor.app_id)
    call.state.comments[comment.id] = comment
    issue.comment_ids.append(comment.id)
    rendered = call.bodies.comment(comment)
    return JsonResponse(201, rendered, {"Location": rendered["url"]})


def get_comment(call: Call) -> JsonResponse:
    return JsonResponse(200, call.bodies.comment(call.state.comment(call.the_repo, call.param("comment_id"))))


def edit_comment(call: Call) -> JsonResponse:
    comment = call.state.comment(call.the_repo, call.param("comment_id"))
    comment.body = check_comment(call.json())
    comment.updated_at = now_iso()
    return JsonResponse(200, call.bodies.comment(comment))


def delete_comment(call: Call) -> JsonResponse:
    comment = call.state.comment(call.the_repo, call.param("comment_id"))
    del call.state.comments[comment.id]
    call.the_repo.issues[comment.issue_number].comment_ids.remove(comment.id)
    return JsonResponse(204)


def create_reaction(call: Call) -> JsonResponse:
    """201 for a new reaction; 200 with the existing one when this user already reacted so."""
    comment = call.state.comment(call.the_repo, call.param("comment_id"))
    content = check_reaction(call.json())
    user = call.state.user(call.actor.login or "ghost")
    for reaction in call.state.reactions:
        if reaction.comment_id == comment.id and reaction.user is user and reaction.content is content:
            return JsonResponse(200, call.bodies.reaction(reaction))
    reaction = Reaction(id=call.state.next_id("reaction"), comment_id=comment.id, user=user, content=content)
    call.state.reactions.append(reaction)
    return JsonResponse(201, call.bodies.reaction(reaction))


def list_reactions(call: Call) -> JsonResponse:
    comment = call.state.comment(call.the_repo, call.param("comment_id"))
    wanted = call.incoming.query.get("content")
    return paginate(call, [call.bodies.reaction(r) for r in call.state.reactions
                           if r.comment_id == comment.id and (wanted is None or r.content.value == wanted)])


# GitHub accepts either permission for the conversation of a pull request.
READ = [("issues", "read"), ("pull_requests", "read")]
WRITE = [("issues", "write"), ("pull_requests", "write")]
COMMENT = f"{REPO}/issues/comments/{{comment_id:int}}"

ENDPOINTS = [
    Endpoint("GET", f"{REPO}/issues/{{number:int}}", get_issue, READ),
    Endpoint("GET", f"{REPO}/issues/{{number:int}}/comments", list_comments, READ),
    Endpoint("POST", f"{REPO}/issues/{{number:int}}/comments", create_comment, WRITE),
    Endpoint("GET", COMMENT, get_comment, READ),
    Endpoint("PATCH", COMMENT, edit_comment, WRITE),
    Endpoint("DELETE", COMMENT, delete_comment, WRITE),
    Endpoint("POST", f"{COMMENT}/reactions", create_reaction, WRITE),
    Endpoint("GET", f"{COMMENT}/reactions", list_reactions, READ),
]
