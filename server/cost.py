"""The cost limit: what an operation may ask for, computed from the operation and its variables
before anything runs.

It runs right after parsing, before validation: a refused operation is not even validated.
The estimate follows GitHub's node limit and the GraphQL cost directive specification (IBM):
every field that returns an object costs 1 for each object it may return; leaves are free. A
paginated field (one with a `first` argument) multiplies the lists of its connection (its
`edges`) by its page size: `first` as sent, or the argument's default in the schema when it is
absent or null. Any other list of objects (a profile's `identities`, say) counts as
`LIST_ESTIMATE` objects, or as many as the ids it is given (`nodes(ids:)`), and `segments` as
the most segments a tenant may have. Aliases and fragments count every time they are used.

Filters are work too: every event condition with a time window (`withinLastDays`) is one
aggregation of its own. A field taking a `where` filter (literal or from variables) costs 1 more
for each such condition in it, and a field evaluating a segment's saved filter (`Segment.count`,
`Segment.members`), unknown before it runs, costs `SAVED_FILTER_ESTIMATE` more per segment. A
scalar read from the database (`profileCount`, `Segment.count`) costs 1 like an object.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    is_leaf_type,
    is_list_type,
    type_from_ast,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from strawberry.extensions import SchemaExtension

from domain.errors import ErrorCode
from domain.filters import MAX_NODES
from domain.segments import MAX_SEGMENTS

# Lists that are not paginated (a profile's identities, event summaries, merges; segments):
# counted as this many objects each. Identities are capped at MAX_IDENTITIES_PER_PROFILE and
# most profiles hold two or three; the others are as small in practice.
LIST_ESTIMATE = 10
# A page size that is null where the schema gives no default: the largest page there is.
MAX_PAGE = 100
# Objects read whole with their parent, never from the database: a segment's saved filter (its
# `and`/`or` lists are bounded by the filter's own size limit). They cost 1 however deep.
WHOLE_VALUES = frozenset({"Segment.filter"})
# Lists whose length has a known maximum, counted at it.
BOUNDED_LISTS = {"Query.segments": MAX_SEGMENTS}
# Scalars read from the database (counts): they cost 1 like an object.
DATABASE_SCALARS = frozenset({"Query.profileCount", "Segment.count"})
# Fields that evaluate their segment's saved filter. The filter is unknown before the field
# runs, so it is counted as holding the most windowed event conditions a filter may hold.
SAVED_FILTERS = frozenset({"Segment.count", "Segment.members"})
SAVED_FILTER_ESTIMATE = MAX_NODES


class _Estimator:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> None:
        self._schema = schema
        self._fragments = fragments
        self._variables = variables
        # A fragment spread many times is costed once per page size (fragment "bombs").
        self._memo: dict[tuple[str, int | None], int] = {}

    def selections(
        self, parent: GraphQLNamedType, selection_set: SelectionSetNode | None, page: int | None
    ) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(parent, selection, page)
            elif isinstance(selection, InlineFragmentNode):
                condition = parent
                if selection.type_condition is not None:
                    condition = type_from_ast(self._schema, selection.type_condition) or parent
                total += self.selections(condition, selection.selection_set, page)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._spread(selection.name.value, page)
        return total

    def _spread(self, name: str, page: int | None) -> int:
        fragment = self._fragments.get(name)
        if fragment is None:
            return 0
        if (name, page) not in self._memo:
            self._memo[(name, page)] = 0  # a cycle (refused by validation) costs nothing more
            condition = type_from_ast(self._schema, fragment.type_condition)
            cost = self.selections(condition, fragment.selection_set, page) if condition else 0
            self._memo[(name, page)] = cost
        return self._memo[(name, page)]

    def _field(self, parent: GraphQLNamedType, node: FieldNode, page: int | None) -> int:
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0  # a union's own fields: only __typename
        field = parent.fields.get(node.name.value)
        if field is None:
            return 0  # __typename, __schema, __type
        named = get_named_type(field.type)
        key = f"{parent.name}.{node.name.value}"
        if is_leaf_type(named) and key not in DATABASE_SCALARS:
            return 0
        if key in WHOLE_VALUES:
            return 1
        try:
            args = get_argument_values(field, node, self._variables)
        except GraphQLError:
            return 1  # execution refuses the arguments before the resolver runs
        own = 1 + _windowed_conditions(args.get("where"))
        if key in SAVED_FILTERS:
            own += SAVED_FILTER_ESTIMATE
        if is_leaf_type(named):
            return own
        count = 1
        if is_list_type(get_nullable_type(field.type)):
            if page is not None and parent.name.endswith("Connection"):
                count = page
            else:
                count = BOUNDED_LISTS.get(key) or _list_size(args)
        return count * (own + self.selections(named, node.selection_set, _page_size(field, args)))


def _windowed_conditions(where: Any) -> int:
    """How many event conditions with a time window a filter holds: one aggregation each."""
    found = 0
    pending = [where]
    while pending:
        value = pending.pop()
        if isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, dict):
            event = value.get("event")
            if isinstance(event, dict) and event.get("withinLastDays") is not None:
                found += 1
            pending.extend(v for k, v in value.items() if k != "event")

    return found


def _list_size(args: Mapping[str, Any]) -> int:
    for value in args.values():
        if isinstance(value, list):
            return len(value)
    return LIST_ESTIMATE


def _page_size(field: GraphQLField, args: Mapping[str, Any]) -> int | None:
    if "first" not in field.args:
        return None
    first = args.get("first")
    if first is None:
        default = field.args["first"].default_value
        first = default if isinstance(default, int) else MAX_PAGE
    return max(0, int(first))


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> int | None:
    """The operation's estimated cost, computed from the parsed document before validation:
    unknown fields and types cost nothing. None when the operation cannot run anyway (no such
    operation, variables that do not coerce): validation or execution refuses it."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None
    root = schema.get_root_type(operation.operation)
    if root is None:
        return None
    coerced = get_variable_values(
        schema, operation.variable_definitions or (), dict(variables or {}), hide_suggestions=True
    )
    if isinstance(coerced, list):
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return _Estimator(schema, fragments, coerced).selections(root, operation.selection_set, None)


def cost_limit(max_cost: int) -> type[SchemaExtension]:
    """An extension refusing operations that cost more than `max_cost` (0: no limit). List it
    after the validation cache, whose result it replaces."""

    class CostLimit(SchemaExtension):
        """Refuses a too costly operation with QUERY_TOO_COSTLY as soon as it is parsed. Its
        validation is skipped (validating a large operation is work too) and the refusal takes
        the place of the validation errors, so no resolver runs and the database is not asked.
        """

        _refusal: GraphQLError | None = None

        def on_parse(self) -> Iterator[None]:
            yield
            self._refusal = self._estimate() if max_cost > 0 else None
            if self._refusal is not None:
                self.execution_context.validation_rules = ()

        def on_validate(self) -> Iterator[None]:
            if self._refusal is not None:
                self.execution_context.pre_execution_errors = [self._refusal]
            yield

        def _estimate(self) -> GraphQLError | None:
            context = self.execution_context
            if context.graphql_document is None:
                return None  # it did not parse
            try:
                cost = operation_cost(
                    context.schema._schema,
                    context.graphql_document,
                    context.operation_name,
                    context.variables,
                )
            except RecursionError:
                return None  # nested past any depth limit: validation refuses it
            if cost is None:
                return None
            if cost <= max_cost:
                # The rate limit counts work too (a request refused by it is not charged).
                charge = getattr(context.context, "charge_cost", None)
                if charge is not None and getattr(context.context, "retry_after", None) is None:
                    charge(cost)
                return None
            return GraphQLError(
                f"This operation would cost {cost}, more than the limit of {max_cost}: "
                "ask for smaller pages (first) or fewer nested lists",
                extensions={
                    "code": ErrorCode.QUERY_TOO_COSTLY.value,
                    "cost": cost,
                    "limit": max_cost,
                },
            )

    return CostLimit
