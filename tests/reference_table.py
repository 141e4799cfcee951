"""The built-in strategies as the foundation issue specifies them, written independently of the code."""

# name: (E|w|² as a function of in, out, gain; the distribution's family; the formula text)
TABLE = {
    "legacy": (lambda i, o, g: g**2 / (i * o) ** 2, "complex_normal", "gain²/(in·out)²"),
    "sqrt_in": (lambda i, o, g: g**2 / i, "complex_normal", "gain²/in"),
    "xavier-complex": (lambda i, o, g: 2 * g**2 / (i + o), "complex_normal", "2·gain²/(in+out)"),
    "kaiming-complex": (lambda i, o, g: 2 * g**2 / i, "complex_normal", "2·gain²/in"),
    "fno-uniform": (lambda i, o, g: (2 / 3) * g**2 / (i * o) ** 2, "uniform_parts", "(2/3)·gain²/(in·out)²"),
}
FORMULAS = {name: formula for name, (_, _, formula) in TABLE.items()}
