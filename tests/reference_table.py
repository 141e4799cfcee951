"""The built-in strategies as the foundation and the "every spectral layer" issues specify them, written
independently of the code. b is the number of spectral branches summed into one output."""

# name: (E|w|² as a function of in, out, gain, b; the distribution's family; the formula text)
TABLE = {
    "legacy": (lambda i, o, g, b=1: g**2 / (i * o) ** 2, "complex_normal", "gain²/(in·out)²"),
    "sqrt_in": (lambda i, o, g, b=1: g**2 / (b * i), "complex_normal", "gain²/(b·in)"),
    "xavier-complex": (lambda i, o, g, b=1: 2 * g**2 / (b * (i + o)), "complex_normal", "2·gain²/(b·(in+out))"),
    "kaiming-complex": (lambda i, o, g, b=1: 2 * g**2 / (b * i), "complex_normal", "2·gain²/(b·in)"),
    "fno-uniform": (lambda i, o, g, b=1: (2 / 3) * g**2 / (i * o) ** 2, "uniform_parts", "(2/3)·gain²/(in·out)²"),
    "ffno-reference": (lambda i, o, g, b=1: g**2 / i, "complex_normal", "gain²/in"),
}
FORMULAS = {name: formula for name, (_, _, formula) in TABLE.items()}
