use leptos::prelude::*;

/// A labelled input with its error message right below it, announced to screen
/// readers and tied to the input by `aria-describedby`. With `value`, the input
/// is bound to that signal; without, it is a plain form field (forms that also
/// work without JavaScript read it by `name`).
#[component]
pub fn Field(
    #[prop(into)] label: String,
    name: &'static str,
    /// The element id, when a page has two fields of the same name.
    #[prop(optional, into)]
    id: String,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: &'static str,
    #[prop(optional)] inputmode: &'static str,
    #[prop(optional)] placeholder: &'static str,
    #[prop(default = true)] required: bool,
    #[prop(optional)] value: Option<RwSignal<String>>,
    #[prop(into)] error: Signal<Option<String>>,
    /// A line below the input saying what it accepts (a valid range).
    #[prop(optional, into)]
    hint: Option<Signal<String>>,
    /// Told when the person edits the input (not when `value` is set).
    #[prop(optional, into)]
    on_edit: Option<Callback<()>>,
    /// The id of the form the input belongs to, when not the enclosing one
    /// (an id no form has keeps it out of every form's post).
    #[prop(optional)]
    form: &'static str,
) -> impl IntoView {
    let id = if id.is_empty() {
        format!("field-{name}")
    } else {
        id
    };
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    let described_by = match hint {
        Some(_) => format!("{hint_id} {error_id}"),
        None => error_id.clone(),
    };
    let value = value.unwrap_or_else(|| RwSignal::new(String::new()));
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <input
                id=id
                name=name
                type=kind
                autocomplete=(!autocomplete.is_empty()).then_some(autocomplete)
                inputmode=(!inputmode.is_empty()).then_some(inputmode)
                placeholder=(!placeholder.is_empty()).then_some(placeholder)
                form=(!form.is_empty()).then_some(form)
                required=required
                spellcheck="false"
                bind:value=value
                on:input=move |_| {
                    if let Some(edited) = on_edit {
                        edited.run(());
                    }
                }
                aria-invalid=move || error.get().is_some().to_string()
                aria-describedby=described_by
            />
            {hint.map(|hint| view! { <p class="hint" id=hint_id>{move || hint.get()}</p> })}
            <p class="field-error" id=error_id role="alert">
                {move || error.get()}
            </p>
        </div>
    }
}
