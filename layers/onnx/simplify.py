"""Tidying a finished graph: Transpose pairs that undo each other (channels-first and back between two
channels-first operators, such as a Conv2D then a MaxPool2D) are cut out, and nodes nothing reads dropped."""

from __future__ import annotations


def cancel_transposes(nodes: list, outputs: list) -> list:
    """``nodes`` (op, inputs, outputs, attributes) in order, without the Transposes that undo the one before
    them and without nodes whose results no other node nor ``outputs`` reads."""
    made_by, renamed, kept = {}, {}, []
    for op, inputs, results, attributes in nodes:
        inputs = [renamed.get(name, name) for name in inputs]
        before = made_by.get(inputs[0]) if op == "Transpose" else None
        if before is not None and before[0] == "Transpose":
            first, second = before[3]["perm"], attributes["perm"]
            if [first[axis] for axis in second] == list(range(len(second))):
                renamed[results[0]] = before[1][0]
                continue
        node = (op, inputs, results, attributes)
        made_by.update((name, node) for name in results)
        kept.append(node)
    read = set(outputs)
    alive = []
    for node in reversed(kept):
        if read.intersection(node[2]):
            alive.append(node)
            read.update(node[1])
    return alive[::-1]
