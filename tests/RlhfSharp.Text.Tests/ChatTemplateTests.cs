// The chat template: the documented default, real Hugging Face templates (Zephyr with trim_blocks/lstrip_blocks, ChatML,
// a Llama-2-style template with raise_exception, slicing and modulo) rendered to the exact text transformers gives, TRL's
// prompt/completion split, continue_final_message, refusals of constructs we do not render, and the tokenizer_config.json
// round trip.
using RlhfSharp.Text.Chat;

namespace RlhfSharp.Text.Tests;

public sealed class ChatTemplateTests
{
    private const string Eos = "<|endoftext|>";

    private static ChatTemplate Default => new(ChatTemplate.DefaultSource, Eos, Eos, "test");

    private static readonly ChatMessage[] Conversation =
        [new("system", "Be kind."), new("user", "Hi"), new("assistant", "Hello."), new("user", "Tell me a story.")];

    [Fact]
    public void Default_RendersRoleTaggedTurns_AssistantTurnsEndWithEos()
    {
        string text = Default.Render(Conversation, addGenerationPrompt: true);
        Assert.Equal("System: Be kind.\nUser: Hi\nAssistant: Hello.<|endoftext|>User: Tell me a story.\nAssistant:", text);
        Assert.Equal("User: Hi\n", Default.Render([new("user", "Hi")], addGenerationPrompt: false));
    }

    [Fact]
    public void Default_RefusesUnknownRole_WithTheTemplatesOwnMessage()
    {
        var ex = Assert.Throws<ChatTemplateException>(() => Default.Render([new("tool", "x")], false));
        Assert.Contains("roles are system, user and assistant; got tool", ex.Message);
    }

    // HuggingFaceH4/zephyr-7b-beta's template. transformers compiles with trim_blocks and lstrip_blocks, so each
    // "{% ... %}\n" leaves nothing, while "{{ ... }}\n" keeps its newline.
    private const string Zephyr =
        "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n" +
        "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n" +
        "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n" +
        "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

    [Fact]
    public void Zephyr_RendersAsTransformersDoes()
    {
        var t = new ChatTemplate(Zephyr, "<s>", "</s>", "zephyr");
        Assert.Equal("<|system|>\nBe kind.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello.</s>\n<|user|>\nTell me a story.</s>\n<|assistant|>\n",
            t.Render(Conversation, addGenerationPrompt: true));
    }

    [Fact]
    public void ChatMl_WithIndentedBlocks_StripsTheBlockLinesOnly()
    {
        const string chatMl = "{% for message in messages %}\n    {{- '<|im_start|>' + message.role + '\\n' + message.content | trim + '<|im_end|>\\n' }}\n{%- endfor %}\n" +
                              "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}";
        var t = new ChatTemplate(chatMl, null, "<|im_end|>", "chatml");
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", t.Render([new("user", "  Hi  ")], addGenerationPrompt: true));
    }

    // Llama-2-chat's shape: a system message folded into the first user turn, alternation checked with modulo and
    // raise_exception, bos/eos around each exchange.
    private const string Llama2 =
        "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}" +
        "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}" +
        "{% for message in loop_messages %}" +
        "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}" +
        "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}" +
        "{% else %}{% set content = message['content'] %}{% endif %}" +
        "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}" +
        "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

    [Fact]
    public void Llama2Style_FoldsSystem_ChecksAlternation()
    {
        var t = new ChatTemplate(Llama2, "<s>", "</s>", "llama");
        Assert.Equal("<s>[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Tell me a story. [/INST]",
            t.Render(Conversation, addGenerationPrompt: true));
        var ex = Assert.Throws<ChatTemplateException>(() => t.Render([new("user", "a"), new("user", "b")], false));
        Assert.Contains("Conversation roles must alternate", ex.Message);
    }

    [Fact]
    public void PromptCompletion_FollowsTrl_CompletionIsWhatTheAnswerAdds()
    {
        var (prompt, completion) = Default.RenderPromptCompletion([new("user", "Hi")], [new("assistant", "Hello there.")]);
        Assert.Equal("User: Hi\nAssistant:", prompt);
        Assert.Equal(" Hello there.<|endoftext|>", completion);
    }

    [Fact]
    public void ContinueFinalMessage_EndsRightAfterItsContent()
    {
        string text = Default.RenderPrompt([new("user", "Hi"), new("assistant", "Once upon")]);
        Assert.Equal("User: Hi\nAssistant: Once upon", text);
    }

    [Theory]
    [InlineData("{% macro m() %}x{% endmacro %}", "{% macro %}")]
    [InlineData("{{ messages | tojson }}", "'|tojson'")]
    [InlineData("{% set ns = namespace(found=false) %}", "namespace()")]
    [InlineData("{% for m in messages if m.role == 'user' %}{{ m.content }}{% endfor %}", "filtered for loop")]
    [InlineData("{{ {'a': 1} }}", "dict literal")]
    public void UnsupportedConstructs_AreRefusedAtParse_NamingTheFileAndConstruct(string source, string named)
    {
        var ex = Assert.Throws<ChatTemplateException>(() => new ChatTemplate(source, null, null, "model/tokenizer_config.json"));
        Assert.StartsWith("model/tokenizer_config.json: chat_template uses ", ex.Message);
        Assert.Contains(named, ex.Message);
    }

    [Fact]
    public void TokenizerConfig_RoundTripsTheTemplate_AndReadsAddedTokenObjects()
    {
        string dir = Directory.CreateTempSubdirectory("chat-template").FullName;
        try
        {
            var tok = CharTokenizer.FromCorpus("Hi there: UserAssistn\n");
            tok.ChatTemplate = new ChatTemplate(Zephyr, Eos, Eos, "memory");
            tok.Save(dir);
            var loaded = TokenizerFiles.Load(dir);
            Assert.Equal(Zephyr, loaded.ChatTemplate!.Source);
            Assert.Equal(Eos, loaded.ChatTemplate.EosToken);
            string map = File.ReadAllText(Path.Combine(dir, TokenizerConfig.SpecialTokensMapFileName));
            Assert.Contains("\"eos_token\": \"<|endoftext|>\"", map);

            // transformers may write special tokens as AddedToken objects; and a template it cannot be rendered is refused by name.
            File.WriteAllText(Path.Combine(dir, TokenizerConfig.ConfigFileName),
                "{\"eos_token\": {\"content\": \"</s>\", \"lstrip\": false}, \"chat_template\": \"{{ eos_token }}\"}");
            Assert.Equal("</s>", TokenizerFiles.Load(dir).ChatTemplate!.Render([new("user", "x")], false));
            File.WriteAllText(Path.Combine(dir, TokenizerConfig.ConfigFileName), "{\"chat_template\": \"{{ messages | tojson }}\"}");
            var ex = Assert.Throws<ChatTemplateException>(() => TokenizerFiles.Load(dir));
            Assert.Contains(Path.Combine(dir, TokenizerConfig.ConfigFileName), ex.Message);

            // No template stored: the tokenizer has none and ChatTemplate.For gives the default with its EOS text.
            File.Delete(Path.Combine(dir, TokenizerConfig.ConfigFileName));
            var plain = TokenizerFiles.Load(dir);
            Assert.Null(plain.ChatTemplate);
            Assert.True(ChatTemplate.For(plain).IsDefault);
            Assert.Equal(Eos, ChatTemplate.For(plain).EosToken);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
