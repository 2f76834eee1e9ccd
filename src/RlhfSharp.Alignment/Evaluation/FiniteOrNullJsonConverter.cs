// JSON for evaluation results: a figure that was not measured (NaN, or ±∞) is written as null, never as a "NaN" string,
// and its record carries a *_reason property saying why (WinRateResult.RateReason, ResponseStats.MeanGoldReason ...).
// Reading null gives NaN back.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RlhfSharp.Alignment.Evaluation;

public sealed class FiniteOrNullJsonConverter : JsonConverter<double>
{
    public override bool HandleNull => true;

    public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

    public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
    {
        if (double.IsFinite(value)) writer.WriteNumberValue(value);
        else writer.WriteNullValue();
    }
}
