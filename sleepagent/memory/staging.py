"""The staged working copy of memory, and how it is merged into the store at commit.

A run never writes blocks while it works: it records edits against the blocks
as it read them. At commit the edits are checked against what the store holds
now (:func:`plan_commit`). A block nobody else touched takes the staged value.
A block that changed meanwhile gets the run's replace and insert edits
re-applied on its new value; when one of them no longer applies, or the run
rewrote the whole block, the label is in conflict and nothing is overwritten.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sleepagent.errors import MemoryEditError, UnknownBlockError
from sleepagent.memory.blocks import (
    Edit,
    MemoryBlock,
    RethinkEdit,
    apply_edit,
    edit_from_dict,
    edit_to_dict,
)
from sleepagent.results import BlockDiff, Conflict

__all__ = ["CommitPlan", "StagedMemory", "plan_commit"]


@dataclass(frozen=True)
class StagedMemory:
    """Blocks as a run read them, plus the edits it made since.

    Attributes:
        base: The blocks as read, by label, in render order.
        edits: Accepted edits, oldest first.

    """

    base: Mapping[str, MemoryBlock]
    edits: tuple[Edit, ...] = ()

    @classmethod
    def of(cls, blocks: Sequence[MemoryBlock]) -> StagedMemory:
        """A working copy of ``blocks`` with no edits."""
        return cls(base={block.label: block for block in blocks})

    def block(self, label: str) -> MemoryBlock:
        """The block as the run currently sees it, edits applied.

        Raises:
            UnknownBlockError: If the scope has no such block.

        """
        if label not in self.base:
            known = ", ".join(f"'{name}'" for name in self.base)
            raise UnknownBlockError(
                f"Edit refused: there is no block '{label}'. The blocks are: {known}.",
                label=label,
            )
        block = self.base[label]
        for edit in self.edits:
            if edit.label == label:
                block = apply_edit(block, edit)
        return block

    def blocks(self) -> list[MemoryBlock]:
        """Every block as the run currently sees it, in render order."""
        return [self.block(label) for label in self.base]

    def stage(self, edit: Edit) -> tuple[StagedMemory, MemoryBlock]:
        """Apply ``edit`` to the working copy.

        Returns:
            The new working copy and the edited block.

        Raises:
            MemoryEditError: If the edit is refused; the working copy is unchanged.

        """
        edited = apply_edit(self.block(edit.label), edit)
        return replace(self, edits=(*self.edits, edit)), edited

    @property
    def touched(self) -> tuple[str, ...]:
        """Labels with at least one edit, in first-edit order."""
        return tuple(dict.fromkeys(edit.label for edit in self.edits))

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, for graph state."""
        return {
            "base": [block.to_dict() for block in self.base.values()],
            "edits": [edit_to_dict(edit) for edit in self.edits],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StagedMemory:
        """Inverse of :meth:`to_dict`."""
        blocks = [MemoryBlock.from_dict(item) for item in data["base"]]
        return cls(
            base={block.label: block for block in blocks},
            edits=tuple(edit_from_dict(item) for item in data["edits"]),
        )


@dataclass(frozen=True)
class CommitPlan:
    """What a commit will write.

    Attributes:
        writes: New block versions to store.
        diffs: One diff per written block.
        conflicts: Labels whose edits cannot be applied to the current value.

    """

    writes: tuple[MemoryBlock, ...] = ()
    diffs: tuple[BlockDiff, ...] = ()
    conflicts: tuple[Conflict, ...] = field(default=())


def plan_commit(staged: StagedMemory, current: Mapping[str, MemoryBlock]) -> CommitPlan:
    """Merge the staged edits into the blocks the store holds now.

    Args:
        staged: The run's working copy.
        current: The store's blocks by label, read under the scope's commit lock.
            A label missing here is taken as never written.

    Returns:
        The blocks to write (with their next version), their diffs, and the
        labels in conflict. Blocks in conflict are not in ``writes``.

    """
    writes: list[MemoryBlock] = []
    diffs: list[BlockDiff] = []
    conflicts: list[Conflict] = []
    for label in staged.touched:
        seen = staged.base[label]
        now = current.get(label) or _vanished(seen)
        edits = [edit for edit in staged.edits if edit.label == label]
        reapplied = now.version != seen.version
        if not reapplied:
            after = staged.block(label)
        else:
            merged = _reapply(now, edits)
            if isinstance(merged, str):
                conflicts.append(
                    Conflict(
                        label=label,
                        reason=merged,
                        dropped=tuple(edit_to_dict(edit) for edit in edits),
                        seen_version=seen.version,
                        current_version=now.version,
                    )
                )
                continue
            after = merged
        if after.value == now.value:
            continue
        written = replace(now, value=after.value, version=now.version + 1)
        writes.append(written)
        diffs.append(
            BlockDiff(
                label=label,
                before=now.value,
                after=written.value,
                version_before=now.version,
                version_after=written.version,
                reapplied=reapplied,
            )
        )
    return CommitPlan(writes=tuple(writes), diffs=tuple(diffs), conflicts=tuple(conflicts))


def _vanished(seen: MemoryBlock) -> MemoryBlock:
    # A block missing from the store was never written (the run saw its declared
    # value) or was deleted since (start it again from empty).
    return seen if seen.version == 0 else replace(seen, value="", version=0)


def _reapply(block: MemoryBlock, edits: Sequence[Edit]) -> MemoryBlock | str:
    """Edits applied on a newer version, or the reason they no longer apply."""
    for edit in edits:
        if isinstance(edit, RethinkEdit):
            return (
                f"block '{block.label}' was rewritten whole by this run, but changed to "
                f"version {block.version} meanwhile; the rewrite would erase that change"
            )
        try:
            block = apply_edit(block, edit)
        except MemoryEditError as error:
            return f"an edit no longer applies to version {block.version}: {error}"
    return block
