function __ru-embed_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ru-embed_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __ru-embed_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __ru-embed_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __ru-embed_parse_tokens -S
    set -l unparsed_tokens (__ru-embed_tokens -pc)
    switch $unparsed_tokens[1]
    case 'ru-embed'
        __ru-embed_parse_subcommand -r 1 'tsv' 'jsonl' 'id-field=' 'text-field=' '0' 'lossy' 'model=' 'prompt=' 'prompt-text=' 'no-prompt' 'id-prefix=' 'no-normalize' 'dtype=' 'truncate-dim=' 'precision=' 'split=' 'batch-size=' 'threads=' 'o/output=' 'force' 'progress' 'no-progress' 'v/verbose' 'version' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __ru-embed_parse_subcommand -r 1 'version'
        end
    end
end

function __ru-embed_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __ru-embed_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __ru-embed_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __ru-embed_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__ru-embed_tokens -p)
    if test -z "$(__ru-embed_tokens -t)"
        set -l index (count (__ru-embed_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'ru-embed' -f
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" tsv' -l 'tsv' -d 'Input lines are id<TAB>text.'
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" jsonl' -l 'jsonl' -d 'Input lines are JSON objects.'
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" id-field' -l 'id-field' -d 'The JSONL field with the record id.' -rfka ''
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" text-field' -l 'text-field' -d 'The JSONL field with the text.' -rfka ''
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" 0' -s '0' -d 'Records end with NUL instead of newline (text may contain newlines).'
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" lossy' -l 'lossy' -d 'Replace invalid UTF-8 with U+FFFD instead of stopping.'
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" model' -l 'model' -d 'A model folder (sentence-transformers layout), or a hub id org/name[@revision] found in the Hugging Face cache or downloaded into it. Default: $RU_EMBED_MODEL, else deepvk/USER-base (see docs/MODELS.md).' -rfka ''
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" prompt' -l 'prompt' -d 'Use the model\'s prompt of this name (e.g. query, passage).' -rfka ''
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" prompt-text' -l 'prompt-text' -d 'Put this text in front of every record.' -rfka ''
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" no-prompt' -l 'no-prompt' -d 'Use no prompt, not even the model\'s default.'
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" id-prefix' -l 'id-prefix' -d 'Put this in front of the record numbers used as ids (for shards).' -rfka ''
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" no-normalize' -l 'no-normalize' -d 'Write the pooled vectors as they are, without L2 normalisation.'
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" dtype' -l 'dtype' -d 'Element type of the output vectors.' -rfka 'f32 f16 int8 binary'
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" truncate-dim' -l 'truncate-dim' -d 'Keep the first N dimensions (then normalise again).' -rfka ''
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" precision' -l 'precision' -d 'Arithmetic of the encoder: f32; int8 (several times faster, vectors at a cosine of about 0.99 to f32); or bf16 (CPUs with AVX512_BF16; f32 elsewhere, with a warning). See docs/EMBED.md.' -rfka 'f32 int8 bf16'
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" split' -l 'split' -d 'Cut each record into windows of at most TOKENS content tokens, consecutive windows sharing OVERLAP tokens, one vector each, ids ID#0, ID#1, ... (text input only; see below).' -rfka ''
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" batch-size' -l 'batch-size' -d 'Texts per forward pass (1: one at a time).' -rfka ''
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" threads' -l 'threads' -d 'Threads (default: all cores, shared out between the ru-* tools running at once, e.g. under xargs -P or make -j; see README).' -rfka ''
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" o output' -l 'output' -s 'o' -d 'Write to this file (default: standard output). It appears whole when the tool succeeds, and is left as it was when the tool fails.' -rfka ''
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" force' -l 'force' -d 'Write binary output even to a terminal.'
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" progress' -l 'progress' -d 'Show progress on standard error (default: when it is a terminal).'
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" no-progress' -l 'no-progress' -d 'Show progress on standard error (default: when it is a terminal).'
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" v verbose' -l 'verbose' -s 'v' -d 'Print a summary on standard error at the end (and where the model was found).'
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" version' -l 'version' -d 'Show the version.'
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_positional "ru-embed" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'ru-embed' -n '__ru-embed_should_offer_completions_for_flags_or_options "ru-embed help" version' -l 'version' -d 'Show the version.'
