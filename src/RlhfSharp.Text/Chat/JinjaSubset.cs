// The part of Jinja that Hugging Face chat templates use, and no more: text, {{ expressions }}, {% for %}/{% if %}/
// {% set %} statements, {# comments #}, whitespace control ({%- -%}) and the environment transformers compiles chat
// templates with (trim_blocks=True, lstrip_blocks=True: a block tag's own line leaves no trace in the output).
// Expressions: string/number/true/false/none literals, names, `a.b`, `a['b']`, `a[1:]`, `a if c else b`,
// `+ - * / // %`, `~`, comparisons, `in`/`not in`, `and`/`or`/`not`, `is [not] defined|none|string|...`, the filters
// trim/length/upper/lower/capitalize/title/string/first/last, the string methods strip/lstrip/rstrip/upper/lower/
// startswith/endswith, `loop.index|index0|first|last|length`, and raise_exception('...').
// Everything else (macros, `{% for ... if %}`, tojson, dict literals, namespaces, includes) is refused when the template is
// parsed, with the construct named: a template we cannot render faithfully must not render at all.
using System.Globalization;
using System.Text;

namespace RlhfSharp.Text.Chat;

/// <summary>A construct the renderer does not support, or a template that does not parse.</summary>
public sealed class ChatTemplateException(string message) : FormatException(message);

/// <summary>A parsed template; <see cref="Render"/> evaluates it against named values.</summary>
internal sealed class JinjaTemplate
{
    private readonly List<Node> _body;

    private JinjaTemplate(List<Node> body) => _body = body;

    /// <summary>Parses <paramref name="source"/>; <paramref name="origin"/> names where it came from in every error.</summary>
    public static JinjaTemplate Parse(string source, string origin)
    {
        var tokens = Lexer.Tokenize(source, origin);
        var parser = new Parser(tokens, origin);
        var body = parser.ParseBlock([]);
        if (parser.Pending is { } extra) throw parser.Unsupported($"a stray {{% {extra} %}}");
        return new JinjaTemplate(body);
    }

    public string Render(IReadOnlyDictionary<string, object?> globals, string origin)
    {
        var sb = new StringBuilder();
        var scope = new Dictionary<string, object?>(globals, StringComparer.Ordinal);
        Exec(_body, scope, sb, origin);
        return sb.ToString();
    }

    // ---- runtime values: string, long, double, bool, null (none), Undefined, List<object?>, Dictionary<string, object?> ----

    internal sealed class Undefined
    {
        public static readonly Undefined Value = new();
        public override string ToString() => "";
    }

    private static void Exec(List<Node> nodes, Dictionary<string, object?> scope, StringBuilder sb, string origin)
    {
        foreach (var node in nodes)
        {
            switch (node)
            {
                case TextNode t:
                    sb.Append(t.Text);
                    break;
                case OutputNode o:
                    sb.Append(Str(o.Expr.Eval(scope, origin)));
                    break;
                case SetNode s:
                    scope[s.Name] = s.Expr.Eval(scope, origin);
                    break;
                case IfNode i:
                    foreach (var (cond, body) in i.Branches)
                        if (cond is null || Truthy(cond.Eval(scope, origin)))
                        {
                            Exec(body, scope, sb, origin);
                            break;
                        }
                    break;
                case ForNode f:
                    var items = Iterate(f.Source.Eval(scope, origin), origin);
                    object? savedVar = scope.GetValueOrDefault(f.Var, Undefined.Value), savedLoop = scope.GetValueOrDefault("loop", Undefined.Value);
                    for (int k = 0; k < items.Count; k++)
                    {
                        scope[f.Var] = items[k];
                        scope["loop"] = new Dictionary<string, object?>(StringComparer.Ordinal)
                        {
                            ["index"] = (long)(k + 1), ["index0"] = (long)k, ["first"] = k == 0, ["last"] = k == items.Count - 1,
                            ["length"] = (long)items.Count, ["revindex"] = (long)(items.Count - k), ["revindex0"] = (long)(items.Count - k - 1),
                        };
                        Exec(f.Body, scope, sb, origin);
                    }
                    if (items.Count == 0 && f.Else is not null) Exec(f.Else, scope, sb, origin);
                    scope[f.Var] = savedVar; // Jinja's loop variable does not outlive the loop
                    scope["loop"] = savedLoop;
                    break;
            }
        }
    }

    private static List<object?> Iterate(object? value, string origin) => value switch
    {
        List<object?> list => list,
        string s => [.. s.Select(c => (object?)c.ToString())],
        Dictionary<string, object?> d => [.. d.Keys],
        Undefined or null => [],
        _ => throw new ChatTemplateException($"{origin}: chat_template loops over {TypeName(value)}, which is not a list."),
    };

    internal static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        Dictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    /// <summary>Python's str() of a value, as Jinja prints it.</summary>
    internal static string Str(object? v) => v switch
    {
        null => "None",
        Undefined => "",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        string s => s,
        List<object?> l => "[" + string.Join(", ", l.Select(Repr)) + "]",
        Dictionary<string, object?> d => "{" + string.Join(", ", d.Select(kv => Repr(kv.Key) + ": " + Repr(kv.Value))) + "}",
        _ => v.ToString() ?? "",
    };

    private static string Repr(object? v) => v is string s ? "'" + s.Replace("\\", "\\\\").Replace("'", "\\'") + "'" : Str(v);

    internal static string TypeName(object? v) => v switch
    {
        null => "none",
        Undefined => "an undefined value",
        bool => "a boolean",
        long or double => "a number",
        string => "a string",
        List<object?> => "a list",
        Dictionary<string, object?> => "a mapping",
        _ => v.GetType().Name,
    };

    // ---- syntax tree ----

    private abstract record Node;
    private sealed record TextNode(string Text) : Node;
    private sealed record OutputNode(Expr Expr) : Node;
    private sealed record SetNode(string Name, Expr Expr) : Node;
    private sealed record IfNode(List<(Expr? Cond, List<Node> Body)> Branches) : Node;
    private sealed record ForNode(string Var, Expr Source, List<Node> Body, List<Node>? Else) : Node;

    internal abstract record Expr
    {
        public abstract object? Eval(Dictionary<string, object?> scope, string origin);
    }

    private sealed record Literal(object? Value) : Expr
    {
        public override object? Eval(Dictionary<string, object?> scope, string origin) => Value;
    }

    private sealed record ListLiteral(List<Expr> Items) : Expr
    {
        public override object? Eval(Dictionary<string, object?> scope, string origin) => Items.Select(i => i.Eval(scope, origin)).ToList();
    }

    private sealed record Name(string Id) : Expr
    {
        public override object? Eval(Dictionary<string, object?> scope, string origin) => scope.TryGetValue(Id, out var v) ? v : Undefined.Value;
    }

    private sealed record Member(Expr Target, Expr Key) : Expr
    {
        public override object? Eval(Dictionary<string, object?> scope, string origin)
        {
            var target = Target.Eval(scope, origin);
            var key = Key.Eval(scope, origin);
            switch (target)
            {
                case Dictionary<string, object?> d when key is string s:
                    return d.TryGetValue(s, out var v) ? v : Undefined.Value;
                case List<object?> l when key is long i:
                    long at = i < 0 ? l.Count + i : i;
                    return at >= 0 && at < l.Count ? l[(int)at] : Undefined.Value;
                case string str when key is long j:
                    long sat = j < 0 ? str.Length + j : j;
                    return sat >= 0 && sat < str.Length ? str[(int)sat].ToString() : Undefined.Value;
                case Undefined:
                    throw new ChatTemplateException($"{origin}: chat_template reads [{Str(key)}] of an undefined value.");
                default:
                    return Undefined.Value;
            }
        }
    }

    private sealed record Slice(Expr Target, Expr? Start, Expr? Stop) : Expr
    {
        public override object? Eval(Dictionary<string, object?> scope, string origin)
        {
            var target = Target.Eval(scope, origin);
            int count = target switch
            {
                List<object?> l => l.Count,
                string s => s.Length,
                _ => throw new ChatTemplateException($"{origin}: chat_template slices {TypeName(target)}."),
            };
            int Bound(Expr? e, int dflt)
            {
                if (e is null) return dflt;
                if (e.Eval(scope, origin) is not long v) throw new ChatTemplateException($"{origin}: chat_template slices with a bound that is not an integer.");
                long b = v < 0 ? count + v : v;
                return (int)Math.Clamp(b, 0, count);
            }
            int from = Bound(Start, 0), to = Math.Max(from, Bound(Stop, count));
            return target is List<object?> list ? list.GetRange(from, to - from) : ((string)target)[from..to];
        }
    }

    private sealed record Conditional(Expr Then, Expr Cond, Expr? Else) : Expr
    {
        public override object? Eval(Dictionary<string, object?> scope, string origin) =>
            Truthy(Cond.Eval(scope, origin)) ? Then.Eval(scope, origin) : Else is null ? Undefined.Value : Else.Eval(scope, origin);
    }

    private sealed record Not(Expr Operand) : Expr
    {
        public override object? Eval(Dictionary<string, object?> scope, string origin) => !Truthy(Operand.Eval(scope, origin));
    }

    private sealed record Negate(Expr Operand) : Expr
    {
        public override object? Eval(Dictionary<string, object?> scope, string origin) => Operand.Eval(scope, origin) switch
        {
            long l => -l,
            double d => -d,
            var v => throw new ChatTemplateException($"{origin}: chat_template negates {TypeName(v)}."),
        };
    }

    private sealed record Binary(string Op, Expr Left, Expr Right) : Expr
    {
        public override object? Eval(Dictionary<string, object?> scope, string origin)
        {
            if (Op == "and") { var l = Left.Eval(scope, origin); return Truthy(l) ? Right.Eval(scope, origin) : l; }
            if (Op == "or") { var l = Left.Eval(scope, origin); return Truthy(l) ? l : Right.Eval(scope, origin); }
            var a = Left.Eval(scope, origin);
            var b = Right.Eval(scope, origin);
            switch (Op)
            {
                case "~": return Str(a) + Str(b);
                case "==": return ValueEquals(a, b);
                case "!=": return !ValueEquals(a, b);
                case "in": return Contains(b, a, origin);
                case "not in": return !Contains(b, a, origin);
                case "+":
                    if (a is string sa && b is string sb) return sa + sb;
                    if (a is List<object?> la && b is List<object?> lb) return la.Concat(lb).ToList();
                    break;
            }
            if (a is long x && b is long y)
                return Op switch
                {
                    "+" => x + y, "-" => x - y, "*" => x * y,
                    "//" when y != 0 => (long)Math.Floor((double)x / y),
                    "%" when y != 0 => ((x % y) + y) % y, // Python's modulo takes the divisor's sign
                    "/" when y != 0 => (double)x / y,
                    "<" => x < y, ">" => x > y, "<=" => x <= y, ">=" => x >= y,
                    _ => throw new ChatTemplateException($"{origin}: chat_template computes {x} {Op} {y}."),
                };
            if (a is long or double && b is long or double)
            {
                double p = Convert.ToDouble(a, CultureInfo.InvariantCulture), q = Convert.ToDouble(b, CultureInfo.InvariantCulture);
                return Op switch
                {
                    "+" => p + q, "-" => p - q, "*" => p * q, "/" => p / q,
                    "<" => p < q, ">" => p > q, "<=" => p <= q, ">=" => p >= q,
                    _ => throw new ChatTemplateException($"{origin}: chat_template computes {Str(a)} {Op} {Str(b)}."),
                };
            }
            if (a is string s1 && b is string s2 && Op is "<" or ">" or "<=" or ">=")
            {
                int c = string.CompareOrdinal(s1, s2);
                return Op switch { "<" => c < 0, ">" => c > 0, "<=" => c <= 0, _ => c >= 0 };
            }
            throw new ChatTemplateException($"{origin}: chat_template applies '{Op}' to {TypeName(a)} and {TypeName(b)}.");
        }

        private static bool Contains(object? container, object? item, string origin) => container switch
        {
            string s when item is string t => s.Contains(t, StringComparison.Ordinal),
            List<object?> l => l.Any(x => ValueEquals(x, item)),
            Dictionary<string, object?> d => item is string k && d.ContainsKey(k),
            _ => throw new ChatTemplateException($"{origin}: chat_template tests 'in' against {TypeName(container)}."),
        };
    }

    internal static bool ValueEquals(object? a, object? b) => (a, b) switch
    {
        (null, null) => true,
        (Undefined, Undefined) => true,
        (string x, string y) => x == y,
        (bool x, bool y) => x == y,
        (long x, long y) => x == y,
        (long or double, long or double) => Convert.ToDouble(a, CultureInfo.InvariantCulture) == Convert.ToDouble(b, CultureInfo.InvariantCulture),
        (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => ValueEquals(p.First, p.Second)),
        _ => false,
    };

    private sealed record Test(Expr Operand, string TestName, bool Negated) : Expr
    {
        public static readonly HashSet<string> Known = ["defined", "undefined", "none", "string", "number", "integer", "mapping", "iterable", "sequence", "true", "false", "boolean"];

        public override object? Eval(Dictionary<string, object?> scope, string origin)
        {
            var v = Operand.Eval(scope, origin);
            bool r = TestName switch
            {
                "defined" => v is not Undefined,
                "undefined" => v is Undefined,
                "none" => v is null,
                "string" => v is string,
                "number" => v is long or double,
                "integer" => v is long,
                "mapping" => v is Dictionary<string, object?>,
                "iterable" => v is List<object?> or string or Dictionary<string, object?>,
                "sequence" => v is List<object?> or string,
                "true" => v is true,
                "false" => v is false,
                "boolean" => v is bool,
                _ => false,
            };
            return r != Negated;
        }
    }

    private sealed record Filter(Expr Operand, string FilterName) : Expr
    {
        public static readonly HashSet<string> Known = ["trim", "length", "count", "upper", "lower", "capitalize", "title", "string", "first", "last"];

        public override object? Eval(Dictionary<string, object?> scope, string origin)
        {
            var v = Operand.Eval(scope, origin);
            return FilterName switch
            {
                "trim" => Str(v).Trim(),
                "length" or "count" => v switch
                {
                    string s => (long)s.Length,
                    List<object?> l => (long)l.Count,
                    Dictionary<string, object?> d => (long)d.Count,
                    _ => throw new ChatTemplateException($"{origin}: chat_template takes the length of {TypeName(v)}."),
                },
                "upper" => Str(v).ToUpperInvariant(),
                "lower" => Str(v).ToLowerInvariant(),
                "capitalize" => Str(v) is { Length: > 0 } c ? char.ToUpperInvariant(c[0]) + c[1..].ToLowerInvariant() : "",
                "title" => CultureInfo.InvariantCulture.TextInfo.ToTitleCase(Str(v).ToLowerInvariant()),
                "string" => Str(v),
                "first" => v is List<object?> { Count: > 0 } f ? f[0] : v is string { Length: > 0 } fs ? fs[0].ToString() : Undefined.Value,
                "last" => v is List<object?> { Count: > 0 } l2 ? l2[^1] : v is string { Length: > 0 } ls ? ls[^1].ToString() : Undefined.Value,
                _ => throw new ChatTemplateException($"{origin}: chat_template uses the filter '{FilterName}'."),
            };
        }
    }

    private sealed record MethodCall(Expr Target, string Method, List<Expr> Args) : Expr
    {
        public static readonly HashSet<string> Known = ["strip", "lstrip", "rstrip", "upper", "lower", "startswith", "endswith"];

        public override object? Eval(Dictionary<string, object?> scope, string origin)
        {
            var v = Target.Eval(scope, origin);
            if (v is not string s) throw new ChatTemplateException($"{origin}: chat_template calls .{Method}() on {TypeName(v)}.");
            var args = Args.Select(a => a.Eval(scope, origin)).ToList();
            string Arg0() => args is [string a0] ? a0 : throw new ChatTemplateException($"{origin}: chat_template calls .{Method}() without one string argument.");
            return Method switch
            {
                "strip" => args.Count == 0 ? s.Trim() : s.Trim(Arg0().ToCharArray()),
                "lstrip" => args.Count == 0 ? s.TrimStart() : s.TrimStart(Arg0().ToCharArray()),
                "rstrip" => args.Count == 0 ? s.TrimEnd() : s.TrimEnd(Arg0().ToCharArray()),
                "upper" => s.ToUpperInvariant(),
                "lower" => s.ToLowerInvariant(),
                "startswith" => s.StartsWith(Arg0(), StringComparison.Ordinal),
                "endswith" => s.EndsWith(Arg0(), StringComparison.Ordinal),
                _ => throw new ChatTemplateException($"{origin}: chat_template calls .{Method}()."),
            };
        }
    }

    private sealed record RaiseException(Expr Message) : Expr
    {
        public override object? Eval(Dictionary<string, object?> scope, string origin) =>
            throw new ChatTemplateException($"{origin}: the chat template refused the conversation: {Str(Message.Eval(scope, origin))}");
    }

    // ---- lexer: the template as text pieces and tag contents, with whitespace control applied ----

    private enum Kind { Text, Output, Statement }

    private sealed record Piece(Kind Kind, string Content);

    private static class Lexer
    {
        public static List<Piece> Tokenize(string src, string origin)
        {
            var pieces = new List<Piece>();
            int i = 0;
            bool stripNextLeading = false, trimNextNewline = false;
            while (i < src.Length)
            {
                int open = src.IndexOf('{', i);
                while (open >= 0 && open + 1 < src.Length && src[open + 1] is not ('{' or '%' or '#')) open = src.IndexOf('{', open + 1);
                if (open < 0 || open + 1 >= src.Length) open = src.Length;
                string text = src[i..open];
                if (open == src.Length)
                {
                    AddText(pieces, text, stripNextLeading, trimNextNewline, false, false);
                    break;
                }
                char kind = src[open + 1];
                string close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
                int end = src.IndexOf(close, open + 2, StringComparison.Ordinal);
                if (end < 0) throw new ChatTemplateException($"{origin}: chat_template has an unclosed '{{{kind}'.");
                bool leftStrip = open + 2 < src.Length && src[open + 2] == '-';
                bool leftKeep = open + 2 < src.Length && src[open + 2] == '+';
                bool rightStrip = src[end - 1] == '-' && end - 1 >= open + 2 + (leftStrip ? 1 : 0);
                bool rightKeep = src[end - 1] == '+';
                // lstrip_blocks: spaces and tabs from the start of the line up to a block or comment tag go.
                bool lstripLine = kind != '{' && !leftKeep;
                AddText(pieces, text, stripNextLeading, trimNextNewline, leftStrip, lstripLine);
                string inner = src[(open + 2 + (leftStrip || leftKeep ? 1 : 0))..(end - (rightStrip || rightKeep ? 1 : 0))].Trim();
                if (kind == '{') pieces.Add(new Piece(Kind.Output, inner));
                else if (kind == '%') pieces.Add(new Piece(Kind.Statement, inner));
                stripNextLeading = rightStrip;
                // trim_blocks: the first newline after a block or comment tag goes.
                trimNextNewline = kind != '{' && !rightKeep;
                i = end + 2;
            }
            return pieces;
        }

        private static void AddText(List<Piece> pieces, string text, bool stripLeading, bool trimNewline, bool stripTrailing, bool lstripLine)
        {
            if (stripLeading) text = text.TrimStart();
            else if (trimNewline && text.StartsWith('\n')) text = text[1..];
            else if (trimNewline && text.StartsWith("\r\n", StringComparison.Ordinal)) text = text[2..];
            if (stripTrailing) text = text.TrimEnd();
            else if (lstripLine)
            {
                int k = text.Length;
                while (k > 0 && text[k - 1] is ' ' or '\t') k--;
                // Only when the tag is the first thing on its line (or of the template).
                if (k == 0 ? pieces.Count == 0 || LastEndsLine(pieces) : text[k - 1] == '\n') text = text[..k];
            }
            if (text.Length > 0) pieces.Add(new Piece(Kind.Text, text));
        }

        private static bool LastEndsLine(List<Piece> pieces) => pieces[^1].Kind == Kind.Text && pieces[^1].Content.EndsWith('\n');
    }

    // ---- parser ----

    private sealed class Parser(List<Piece> pieces, string origin)
    {
        private int _at;

        /// <summary>The statement keyword that ended the last block, if the block ended on one.</summary>
        public string? Pending { get; private set; }

        public ChatTemplateException Unsupported(string what) =>
            new($"{origin}: chat_template uses {what}, which RlhfSharp's chat template renderer does not support " +
                "(it renders the Jinja subset Hugging Face chat templates use: for/if/set, message fields, loop.*, add_generation_prompt, bos_token/eos_token, raise_exception).");

        /// <summary>Nodes up to one of <paramref name="enders"/> (left in <see cref="Pending"/> with its arguments) or the end.</summary>
        public List<Node> ParseBlock(string[] enders)
        {
            var nodes = new List<Node>();
            Pending = null;
            while (_at < pieces.Count)
            {
                var p = pieces[_at++];
                if (p.Kind == Kind.Text) { nodes.Add(new TextNode(p.Content)); continue; }
                if (p.Kind == Kind.Output) { nodes.Add(new OutputNode(ParseExpression(p.Content))); continue; }
                string stmt = p.Content;
                string keyword = stmt.Split([' ', '\t', '\n', '\r'], 2)[0];
                if (enders.Contains(keyword))
                {
                    Pending = stmt;
                    return nodes;
                }
                switch (keyword)
                {
                    case "if":
                        nodes.Add(ParseIf(stmt[2..]));
                        break;
                    case "for":
                        nodes.Add(ParseFor(stmt[3..]));
                        break;
                    case "set":
                        nodes.Add(ParseSet(stmt[3..]));
                        break;
                    case "generation" or "endgeneration":
                        break; // transformers' marker for assistant-token masks: no output of its own
                    case "endif" or "endfor" or "elif" or "else":
                        throw Unsupported($"a stray {{% {keyword} %}}");
                    default:
                        throw Unsupported($"the statement {{% {keyword} %}}");
                }
            }
            if (enders.Length > 0) throw new ChatTemplateException($"{origin}: chat_template ends before {{% {enders[^1]} %}}.");
            return nodes;
        }

        private IfNode ParseIf(string cond)
        {
            var branches = new List<(Expr?, List<Node>)>();
            Expr? current = ParseExpression(cond);
            while (true)
            {
                var body = ParseBlock(["elif", "else", "endif"]);
                branches.Add((current, body));
                string ender = Pending!;
                if (ender.StartsWith("endif", StringComparison.Ordinal)) break;
                if (ender.StartsWith("elif", StringComparison.Ordinal)) current = ParseExpression(ender[4..]);
                else if (ender.Trim() == "else") current = null;
                else throw Unsupported($"{{% {ender} %}}");
                if (current is null)
                {
                    branches.Add((null, ParseBlock(["endif"])));
                    break;
                }
            }
            Pending = null;
            return new IfNode(branches);
        }

        private ForNode ParseFor(string header)
        {
            var lex = new ExprLexer(header, this);
            string var = lex.Next() is { Type: 'n' } v ? v.Text : throw Unsupported("a for loop over more than one name");
            if (lex.Peek().Text == ",") throw Unsupported("a for loop that unpacks several names");
            if (lex.Next().Text != "in") throw Unsupported($"{{% for {header} %}}");
            var source = ParseOr(lex, allowConditional: false);
            if (lex.Peek().Text == "if") throw Unsupported("a filtered for loop ({% for x in y if ... %})");
            if (lex.Peek().Text == "recursive") throw Unsupported("a recursive for loop");
            lex.ExpectEnd();
            var body = ParseBlock(["else", "endfor"]);
            List<Node>? elseBody = null;
            if (Pending!.Trim() == "else") elseBody = ParseBlock(["endfor"]);
            Pending = null;
            return new ForNode(var, source, body, elseBody);
        }

        private SetNode ParseSet(string rest)
        {
            var lex = new ExprLexer(rest, this);
            var name = lex.Next();
            if (name.Type != 'n') throw Unsupported($"{{% set {rest} %}}");
            if (lex.Peek().Text == ".") throw Unsupported("assignment to an attribute (namespace objects)");
            if (lex.Next().Text != "=") throw Unsupported($"a block {{% set {rest} %}} (only `set name = expression` is supported)");
            var expr = ParseConditional(lex);
            lex.ExpectEnd();
            return new SetNode(name.Text, expr);
        }

        private Expr ParseExpression(string text)
        {
            var lex = new ExprLexer(text, this);
            var e = ParseConditional(lex);
            lex.ExpectEnd();
            return e;
        }

        private Expr ParseConditional(ExprLexer lex)
        {
            var then = ParseOr(lex, allowConditional: true);
            if (lex.Peek().Text != "if") return then;
            lex.Next();
            var cond = ParseOr(lex, allowConditional: true);
            Expr? otherwise = null;
            if (lex.Peek().Text == "else")
            {
                lex.Next();
                otherwise = ParseConditional(lex);
            }
            return new Conditional(then, cond, otherwise);
        }

        private Expr ParseOr(ExprLexer lex, bool allowConditional)
        {
            var e = ParseAnd(lex);
            while (lex.Peek().Text == "or") { lex.Next(); e = new Binary("or", e, ParseAnd(lex)); }
            return e;
        }

        private Expr ParseAnd(ExprLexer lex)
        {
            var e = ParseNot(lex);
            while (lex.Peek().Text == "and") { lex.Next(); e = new Binary("and", e, ParseNot(lex)); }
            return e;
        }

        private Expr ParseNot(ExprLexer lex)
        {
            if (lex.Peek().Text == "not") { lex.Next(); return new Not(ParseNot(lex)); }
            return ParseCompare(lex);
        }

        private Expr ParseCompare(ExprLexer lex)
        {
            var e = ParseConcat(lex);
            while (true)
            {
                var t = lex.Peek();
                if (t.Text is "==" or "!=" or "<" or ">" or "<=" or ">=" || t.Text == "in")
                {
                    lex.Next();
                    e = new Binary(t.Text, e, ParseConcat(lex));
                }
                else if (t.Text == "not" && lex.PeekAt(1).Text == "in")
                {
                    lex.Next(); lex.Next();
                    e = new Binary("not in", e, ParseConcat(lex));
                }
                else if (t.Text == "is")
                {
                    lex.Next();
                    bool negated = false;
                    if (lex.Peek().Text == "not") { lex.Next(); negated = true; }
                    var name = lex.Next();
                    string test = name.Text switch { "None" => "none", "True" => "true", "False" => "false", _ => name.Text };
                    if (name.Type != 'n' || !Test.Known.Contains(test)) throw Unsupported($"the test 'is {name.Text}'");
                    if (lex.Peek().Text == "(") throw Unsupported($"the test 'is {name.Text}(...)'");
                    e = new Test(e, test, negated);
                }
                else return e;
            }
        }

        private Expr ParseConcat(ExprLexer lex)
        {
            var e = ParseAdd(lex);
            while (lex.Peek().Text == "~") { lex.Next(); e = new Binary("~", e, ParseAdd(lex)); }
            return e;
        }

        private Expr ParseAdd(ExprLexer lex)
        {
            var e = ParseMul(lex);
            while (lex.Peek().Text is "+" or "-") { string op = lex.Next().Text; e = new Binary(op, e, ParseMul(lex)); }
            return e;
        }

        private Expr ParseMul(ExprLexer lex)
        {
            var e = ParseUnary(lex);
            while (lex.Peek().Text is "*" or "/" or "//" or "%")
            {
                string op = lex.Next().Text;
                e = new Binary(op, e, ParseUnary(lex));
            }
            return e;
        }

        private Expr ParseUnary(ExprLexer lex)
        {
            if (lex.Peek().Text == "-") { lex.Next(); return new Negate(ParseUnary(lex)); }
            if (lex.Peek().Text == "+") { lex.Next(); return ParseUnary(lex); }
            var e = ParsePostfix(lex);
            while (lex.Peek().Text == "|")
            {
                lex.Next();
                var name = lex.Next();
                if (name.Type != 'n' || !Filter.Known.Contains(name.Text)) throw Unsupported($"the filter '|{name.Text}'");
                if (lex.Peek().Text == "(") throw Unsupported($"the filter '|{name.Text}(...)' with arguments");
                e = new Filter(e, name.Text);
            }
            return e;
        }

        private Expr ParsePostfix(ExprLexer lex)
        {
            var e = ParsePrimary(lex);
            while (true)
            {
                var t = lex.Peek();
                if (t.Text == ".")
                {
                    lex.Next();
                    var member = lex.Next();
                    if (member.Type != 'n') throw Unsupported($"'.{member.Text}'");
                    if (lex.Peek().Text == "(")
                    {
                        if (!MethodCall.Known.Contains(member.Text)) throw Unsupported($"the method .{member.Text}()");
                        e = new MethodCall(e, member.Text, ParseArgs(lex));
                    }
                    else e = new Member(e, new Literal(member.Text));
                }
                else if (t.Text == "[")
                {
                    lex.Next();
                    Expr? start = lex.Peek().Text == ":" ? null : ParseConditional(lex);
                    if (lex.Peek().Text == ":")
                    {
                        lex.Next();
                        Expr? stop = lex.Peek().Text == "]" ? null : ParseConditional(lex);
                        if (lex.Peek().Text == ":") throw Unsupported("a slice with a step");
                        lex.Expect("]");
                        e = new Slice(e, start, stop);
                    }
                    else
                    {
                        lex.Expect("]");
                        e = new Member(e, start!);
                    }
                }
                else if (t.Text == "(") throw Unsupported("a call of something other than raise_exception or a string method");
                else return e;
            }
        }

        private List<Expr> ParseArgs(ExprLexer lex)
        {
            lex.Expect("(");
            var args = new List<Expr>();
            while (lex.Peek().Text != ")")
            {
                if (lex.PeekAt(1).Text == "=" ) throw Unsupported("keyword arguments");
                args.Add(ParseConditional(lex));
                if (lex.Peek().Text == ",") lex.Next();
                else break;
            }
            lex.Expect(")");
            return args;
        }

        private Expr ParsePrimary(ExprLexer lex)
        {
            var t = lex.Next();
            switch (t.Type)
            {
                case 's': return new Literal(t.Text);
                case 'i': return new Literal(long.Parse(t.Text, CultureInfo.InvariantCulture));
                case 'f': return new Literal(double.Parse(t.Text, CultureInfo.InvariantCulture));
                case 'n':
                    switch (t.Text)
                    {
                        case "true" or "True": return new Literal(true);
                        case "false" or "False": return new Literal(false);
                        case "none" or "None": return new Literal(null);
                        case "raise_exception":
                            var args = ParseArgs(lex);
                            if (args.Count != 1) throw Unsupported("raise_exception with other than one argument");
                            return new RaiseException(args[0]);
                        case "namespace" or "range" or "dict" or "strftime_now" or "lipsum" or "cycler" or "joiner":
                            throw Unsupported($"the function {t.Text}()");
                        default:
                            return new Name(t.Text);
                    }
                case 'p' when t.Text == "(":
                    var inner = ParseConditional(lex);
                    if (lex.Peek().Text == ",") throw Unsupported("a tuple");
                    lex.Expect(")");
                    return inner;
                case 'p' when t.Text == "[":
                    var items = new List<Expr>();
                    while (lex.Peek().Text != "]")
                    {
                        items.Add(ParseConditional(lex));
                        if (lex.Peek().Text == ",") lex.Next();
                        else break;
                    }
                    lex.Expect("]");
                    return new ListLiteral(items);
                case 'p' when t.Text == "{":
                    throw Unsupported("a dict literal");
                case 'e':
                    throw new ChatTemplateException($"{origin}: chat_template has an expression that ends too early.");
                default:
                    throw Unsupported($"'{t.Text}' in an expression");
            }
        }
    }

    /// <summary>Expression tokens: 'n' name, 's' string, 'i' integer, 'f' float, 'p' punctuation, 'e' end.</summary>
    private readonly record struct Tok(char Type, string Text);

    private sealed class ExprLexer
    {
        private readonly List<Tok> _toks = [];
        private readonly Parser _parser;
        private int _at;

        private static readonly string[] Punct = ["==", "!=", "<=", ">=", "//", "**", "(", ")", "[", "]", "{", "}", ".", ",", ":", "|", "~", "+", "-", "*", "/", "%", "<", ">", "="];

        public ExprLexer(string text, Parser parser)
        {
            _parser = parser;
            int i = 0;
            while (i < text.Length)
            {
                char c = text[i];
                if (char.IsWhiteSpace(c)) { i++; continue; }
                if (c is '\'' or '"')
                {
                    var sb = new StringBuilder();
                    int j = i + 1;
                    while (j < text.Length && text[j] != c)
                    {
                        if (text[j] == '\\' && j + 1 < text.Length)
                        {
                            j++;
                            sb.Append(text[j] switch { 'n' => '\n', 't' => '\t', 'r' => '\r', '0' => '\0', var other => other });
                        }
                        else sb.Append(text[j]);
                        j++;
                    }
                    if (j >= text.Length) throw new ChatTemplateException("chat_template has an unterminated string literal.");
                    _toks.Add(new Tok('s', sb.ToString()));
                    i = j + 1;
                    continue;
                }
                if (char.IsDigit(c))
                {
                    int j = i;
                    while (j < text.Length && char.IsDigit(text[j])) j++;
                    bool isFloat = j + 1 < text.Length && text[j] == '.' && char.IsDigit(text[j + 1]);
                    if (isFloat) { j++; while (j < text.Length && char.IsDigit(text[j])) j++; }
                    _toks.Add(new Tok(isFloat ? 'f' : 'i', text[i..j]));
                    i = j;
                    continue;
                }
                if (char.IsLetter(c) || c == '_')
                {
                    int j = i;
                    while (j < text.Length && (char.IsLetterOrDigit(text[j]) || text[j] == '_')) j++;
                    _toks.Add(new Tok('n', text[i..j]));
                    i = j;
                    continue;
                }
                string? p = Punct.FirstOrDefault(x => string.CompareOrdinal(text, i, x, 0, x.Length) == 0);
                if (p is null || p == "**") throw parser.Unsupported($"'{(p ?? c.ToString())}' in an expression");
                _toks.Add(new Tok('p', p));
                i += p.Length;
            }
        }

        public Tok Peek() => PeekAt(0);

        public Tok PeekAt(int k) => _at + k < _toks.Count ? _toks[_at + k] : new Tok('e', "");

        public Tok Next()
        {
            var t = Peek();
            if (_at < _toks.Count) _at++;
            return t;
        }

        public void Expect(string text)
        {
            var t = Next();
            if (t.Text != text) throw _parser.Unsupported(t.Type == 'e' ? $"an expression missing '{text}'" : $"'{t.Text}' where '{text}' was expected");
        }

        public void ExpectEnd()
        {
            if (Peek().Type != 'e') throw _parser.Unsupported($"'{Peek().Text}' after a complete expression");
        }
    }
}
