"""Teacher distillation: OpenAI-compatible and Anthropic clients, a request cache keyed by the
request's CID, retries with backoff, a USD budget from reported usage, and the cost estimate.

    Teacher(spec, cache_dir).run(requests) -> (replies, TeacherStats)
    estimate_cost(task: TaskSpec, n_examples: int) -> float
"""

from kolmbuild.teacher.cost import estimate_cost
from kolmbuild.teacher.errors import TeacherError
from kolmbuild.teacher.request import ChatRequest, Message, Reply
from kolmbuild.teacher.runner import Teacher, TeacherStats

__all__ = ["ChatRequest", "Message", "Reply", "Teacher", "TeacherError", "TeacherStats", "estimate_cost"]
