"""The IR on its own: op kinds, the named accessors of structured ops, dropping results, and
the verifier and printer on ops built by hand with the Builder."""

import operator

import pytest

from symdiff import codegen, ir
from symdiff.ir import Builder, Function, Op, OpKind, Region, Value


def build_for() -> tuple[Function, Op]:
    """``f(n, x)``: ``total, count = 0.0, 0; for i in range(n): total += x * i; count += 1``."""
    n, x = Value("n"), Value("x")
    fn = Function("f", Region(params=[n, x]))
    b = Builder(fn.body)
    iterable = b.call(range, [n])
    total0, count0 = b.const(0.0, "total"), b.const(0, "count")
    i, total, count = Value("i"), Value("total"), Value("count")
    body = Region(params=[i, total, count])
    b.push(body)
    body.yields = [b.call(operator.add, [total, b.call(operator.mul, [x, i])], hint="total"),
                   b.call(operator.add, [count, b.const(1)], hint="count")]
    b.pop()
    loop = b.emit(Op(OpKind.FOR, [iterable, total0, count0], [Value("total"), Value("count")], regions=[body]))
    fn.body.yields = [b.call(operator.add, loop.results, hint="out")]
    return fn, loop


def build_while() -> tuple[Function, Op]:
    """``f(x)``: ``k = 0; while k < 5: k += 1; x = x * 2``."""
    x = Value("x")
    fn = Function("f", Region(params=[x]))
    b = Builder(fn.body)
    k0 = b.const(0, "k")
    cond = Region(params=[Value("k"), Value("x")])
    b.push(cond)
    cond.yields = [b.call(operator.lt, [cond.params[0], b.const(5)])]
    b.pop()
    body = Region(params=[Value("k"), Value("x")])
    b.push(body)
    body.yields = [b.call(operator.add, [body.params[0], b.const(1)], hint="k"),
                   b.call(operator.mul, [body.params[1], b.const(2)], hint="x")]
    b.pop()
    loop = b.emit(Op(OpKind.WHILE, [k0, x], [Value("k"), Value("x")], regions=[cond, body]))
    fn.body.yields = [loop.results[1]]
    return fn, loop


def build_if() -> tuple[Function, Op]:
    """``f(x)``: ``y, z = (x, 1.0) if x > 0 else (-x, 2.0)``, returning ``y * z``."""
    x = Value("x")
    fn = Function("f", Region(params=[x]))
    b = Builder(fn.body)
    test = b.call(operator.gt, [x, b.const(0)])
    then, orelse = Region(), Region()
    b.push(then)
    then.yields = [x, b.const(1.0)]
    b.pop()
    b.push(orelse)
    orelse.yields = [b.call(operator.neg, [x]), b.const(2.0)]
    b.pop()
    branch = b.emit(Op(OpKind.IF, [test], [Value("y"), Value("z")], regions=[then, orelse]))
    fn.body.yields = [b.call(operator.mul, branch.results)]
    return fn, branch


def run(fn: Function, *args):
    source, namespace = codegen.generate(fn, "f")
    return codegen.compile_function(source, "f", namespace, "<test_ir>")(*args)


# ----------------------------------------------------------------------------- kinds


def test_op_kinds_are_an_enum_with_the_plain_names_as_values():
    assert [k.value for k in OpKind] == ["const", "call", "if", "for", "while"]
    assert str(OpKind.FOR) == "for" and f"{OpKind.WHILE}" == "while"


def test_an_op_given_its_kind_as_a_string_holds_the_enum_member():
    op = Op("call", [], [Value()], fn=len)
    assert op.kind is OpKind.CALL
    with pytest.raises(ValueError):
        Op("loop", [], [])


def test_builder_ops_have_enum_kinds():
    b = Builder(Region())
    b.call(operator.neg, [b.const(1.0)])
    assert [op.kind for op in b.region.ops] == [OpKind.CONST, OpKind.CALL]
    assert all(type(op.kind) is OpKind for op in b.region.ops)


def test_is_loop_holds_for_for_and_while_only():
    assert build_for()[1].is_loop and build_while()[1].is_loop
    assert not build_if()[1].is_loop
    assert not Op(OpKind.CALL, [], [Value()], fn=len).is_loop


# ----------------------------------------------------------------------------- accessors


def test_for_accessors_name_the_positional_layout():
    _, loop = build_for()
    body = loop.regions[0]
    assert loop.iterable is loop.args[0]
    assert loop.inits == loop.args[1:] and len(loop.inits) == 2
    assert loop.body is body
    assert loop.target is body.params[0] and loop.target.hint == "i"
    assert loop.carried(body) == body.params[1:]
    assert [p.hint for p in loop.carried(body)] == ["total", "count"]


def test_while_accessors_name_the_positional_layout():
    _, loop = build_while()
    cond, body = loop.regions
    assert loop.cond is cond and loop.body is body
    assert loop.inits == loop.args
    assert loop.carried(cond) == cond.params and loop.carried(body) == body.params


def test_if_accessors_name_the_positional_layout():
    _, branch = build_if()
    assert branch.test is branch.args[0]
    assert branch.then is branch.regions[0] and branch.orelse is branch.regions[1]


def test_loop_slots_line_up_across_inits_params_yields_and_results():
    _, loop = build_for()
    for i, (init, param, y, r) in enumerate(zip(loop.inits, loop.carried(loop.body), loop.body.yields,
                                                 loop.results)):
        assert init is loop.args[1 + i] and param is loop.body.params[1 + i]
        assert y is loop.body.yields[i] and r is loop.results[i]


def test_list_accessors_return_new_lists():
    _, loop = build_while()
    loop.inits.append(Value())
    loop.carried(loop.body).append(Value())
    assert len(loop.args) == 2 and len(loop.body.params) == 2


@pytest.mark.parametrize("build, parts", [
    (build_for, ["test", "then", "orelse", "cond"]),
    (build_while, ["test", "then", "orelse", "iterable", "target"]),
    (build_if, ["iterable", "target", "inits", "body", "cond"]),
])
def test_accessors_of_another_kind_raise(build, parts):
    _, op = build()
    for part in parts:
        with pytest.raises(ir.IRError, match="no such part"):
            getattr(op, part)


def test_carried_is_refused_outside_loops():
    _, branch = build_if()
    with pytest.raises(ir.IRError):
        branch.carried(branch.then)


# ----------------------------------------------------------------------------- dropping results


def test_keep_results_of_a_for_loop_keeps_the_target_and_the_kept_slots():
    fn, loop = build_for()
    iterable, inits, target = loop.iterable, loop.inits, loop.target
    params, yields, results = loop.carried(loop.body), list(loop.body.yields), list(loop.results)
    loop.keep_results([1])
    assert loop.iterable is iterable and loop.inits == [inits[1]]
    assert loop.target is target and loop.carried(loop.body) == [params[1]]
    assert loop.body.yields == [yields[1]] and loop.results == [results[1]]
    # what read the dropped slot goes too: then the function is valid again
    loop.body.ops = [op for op in loop.body.ops if op.kind is OpKind.CONST or op.result is loop.body.yields[0]]
    fn.body.ops = fn.body.ops[:-1]
    fn.body.yields = [loop.results[0]]
    ir.verify(fn)
    assert run(fn, 4, 2.0) == 4


def test_keep_results_of_a_while_loop_drops_the_slot_in_both_regions():
    fn, loop = build_while()
    cond_params, body_params = loop.carried(loop.cond), loop.carried(loop.body)
    x_result = loop.results[1]
    loop.keep_results([0, 1])  # keeping everything changes nothing
    assert loop.carried(loop.cond) == cond_params and loop.results[1] is x_result
    loop.keep_results([0])
    assert loop.inits == [loop.args[0]] and len(loop.args) == 1
    assert loop.carried(loop.cond) == cond_params[:1] and loop.carried(loop.body) == body_params[:1]
    assert len(loop.body.yields) == 1 and len(loop.cond.yields) == 1 and len(loop.results) == 1


def test_keep_results_of_an_if_drops_the_arm_yields():
    _, branch = build_if()
    then_y, else_y = branch.then.yields[1], branch.orelse.yields[1]
    branch.keep_results([1])
    assert branch.then.yields == [then_y] and branch.orelse.yields == [else_y]
    assert branch.test is branch.args[0] and len(branch.results) == 1


# ----------------------------------------------------------------------------- verifier, printer, codegen


@pytest.mark.parametrize("build", [build_for, build_while, build_if])
def test_verifier_accepts_hand_built_structured_ops(build):
    fn, _ = build()
    ir.verify(fn)


def test_verifier_rejects_a_for_body_without_its_target():
    fn, loop = build_for()
    loop.body.params = loop.body.params[1:]
    with pytest.raises(ir.IRError, match="for: params/yields/results mismatch"):
        ir.verify(fn)


def test_verifier_rejects_a_while_condition_missing_a_carried_param():
    fn, loop = build_while()
    loop.cond.params = loop.cond.params[:1]
    with pytest.raises(ir.IRError, match="while: cond/body/results mismatch"):
        ir.verify(fn)


def test_verifier_rejects_a_loop_with_an_init_too_few():
    fn, loop = build_while()
    loop.args = loop.args[:1]
    with pytest.raises(ir.IRError, match="while"):
        ir.verify(fn)


def test_printer_shows_kinds_by_name_and_every_region():
    for build, kind, regions in ((build_for, "for", 1), (build_while, "while", 2), (build_if, "if", 2)):
        text = ir.format_function(build()[0])
        assert f" = {kind} " in text and "OpKind" not in text
        assert sum(line.strip().startswith("region ") for line in text.splitlines()) == regions
    text = ir.format_function(build_for()[0])
    assert "region 0 (%i" in text and " = const 0.0" in text and " = range(%n" in text


def test_hand_built_ops_generate_working_python():
    assert run(build_for()[0], 4, 2.0) == 2.0 * (0 + 1 + 2 + 3) + 4
    assert run(build_while()[0], 1.5) == 1.5 * 2 ** 5
    assert run(build_if()[0], 3.0) == 3.0 and run(build_if()[0], -3.0) == 6.0
