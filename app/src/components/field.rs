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
    #[prop(optional)]
    id: &'static str,
    #[prop(default = "text")] kind: &'static str,
    #[prop(optional)] autocomplete: &'static str,
    #[prop(optional)] inputmode: &'static str,
    #[prop(optional)] placeholder: &'static str,
    #[prop(default = true)] required: bool,
    #[prop(optional)] value: Option<RwSignal<String>>,
    #[prop(into)] error: Signal<Option<String>>,
) -> impl IntoView {
    let id = if id.is_empty() {
        format!("field-{name}")
    } else {
        id.to_string()
    };
    let error_id = format!("{id}-error");
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
                required=required
                spellcheck="false"
                bind:value=value
                aria-invalid=move || error.get().is_some().to_string()
                aria-describedby=error_id.clone()
            />
            <p class="field-error" id=error_id role="alert">
                {move || error.get()}
            </p>
        </div>
    }
}
