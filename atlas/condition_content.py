"""Teaching text for the 27 seeded conditions (atlas/taxonomy.py), written for Atlas.

One entry per seeded slug. A data migration copies it into the Condition rows (only into
fields a curator has not filled), after which the admin is where it is edited. Django-free,
like the taxonomy, so scripts can read it.

Written for learners: what the condition is, how it looks on lighter and on darker skin
(redness is often violet, grey or dark brown on types IV-VI), which conditions it is
commonly confused with (slugs of the seeded vocabulary, used by the look-alike drills), when
to see a clinician, and public references. It is educational, not diagnostic.
"""

from __future__ import annotations

from typing import NamedTuple


# Shown beside every condition's text (pages and API).
EDUCATIONAL_NOTE = (
    "Educational text, not a diagnosis: skin conditions vary, and only a clinician who examines "
    "the skin can say what it is."
)

NHS = "https://www.nhs.uk/conditions/"
DERMNET = "https://dermnetnz.org/topics/"
MIND_THE_GAP = ("Mind the Gap: a handbook of clinical signs in Black and Brown skin", "https://www.blackandbrownskin.co.uk/mindthegap")


class ConditionText(NamedTuple):
    summary: str  # one sentence: the condition's short text (lists, exports)
    about: str  # what it is
    light_skin: str  # how it looks on lighter skin (types I-III)
    dark_skin: str  # how it looks on darker skin (types IV-VI)
    lookalikes: tuple[str, ...]  # slugs of conditions it is commonly confused with
    see_clinician: str  # when to see a clinician
    reading: tuple[tuple[str, str], ...]  # (title, https URL)


CONDITION_TEXT: dict[str, ConditionText] = {
    "acne": ConditionText(
        summary="Blocked, inflamed hair follicles causing blackheads, whiteheads, spots and sometimes deep nodules.",
        about="Acne starts when oil and dead skin cells block hair follicles on the face, chest and back. "
        "Blocked follicles show as blackheads and whiteheads; when they become inflamed they form red "
        "papules, pus-filled pustules and, in severe acne, deep painful nodules that can scar.",
        light_skin="Inflamed spots are pink to red, often with a red halo; healed spots may leave red marks for weeks.",
        dark_skin="Inflamed spots can look skin-coloured, dark brown or purple rather than red. Dark marks left "
        "behind (post-inflammatory hyperpigmentation) are common, often bother people more than the spots, "
        "and can last months; raised keloid scars are more likely.",
        lookalikes=("folliculitis", "hidradenitis", "post-inflammatory-hyperpigmentation"),
        see_clinician="If spots are deep and painful, leave scars or dark marks, spread to the chest and back, "
        "or do not improve after a few months of pharmacy treatment.",
        reading=(
            ("NHS: Acne", NHS + "acne/"),
            ("DermNet: Acne vulgaris", DERMNET + "acne-vulgaris"),
            MIND_THE_GAP,
        ),
    ),
    "actinic-keratosis": ConditionText(
        summary="Rough, scaly patches on sun-damaged skin that can occasionally turn into squamous cell carcinoma.",
        about="Actinic (solar) keratoses are areas of damaged skin cells caused by years of sun exposure. They "
        "appear on the face, scalp, ears, backs of the hands and forearms, usually after the age of 40, and "
        "often feel like sandpaper before they are easy to see.",
        light_skin="Pink, red or skin-coloured rough patches, a few millimetres across, sometimes with a yellow-white crust.",
        dark_skin="Uncommon on deeply pigmented skin. When present they may be skin-coloured, grey or brown "
        "(pigmented actinic keratosis) and are easier to feel than to see.",
        lookalikes=("scc-sccis", "sk-isk", "basal-cell-carcinoma"),
        see_clinician="If a patch becomes thick, tender, bleeds, grows quickly or forms a lump: these can be "
        "signs of squamous cell carcinoma.",
        reading=(
            ("NHS: Actinic keratoses (solar keratoses)", NHS + "actinic-keratoses/"),
            ("DermNet: Actinic keratosis", DERMNET + "actinic-keratosis"),
        ),
    ),
    "allergic-contact-dermatitis": ConditionText(
        summary="An itchy eczema-like rash where the skin touched something the immune system reacts to.",
        about="Allergic contact dermatitis is a delayed allergy: a day or two after contact with an allergen "
        "(nickel, fragrances, hair dye, rubber accelerators, some plants or creams) the skin becomes itchy "
        "and inflamed, at first in the shape of what touched it.",
        light_skin="Red, itchy, sometimes blistered or weeping patches with sharp edges matching the contact "
        "(a watch strap, an earring, a waistband).",
        dark_skin="The inflamed skin may look dark brown, purple or grey rather than red, and thickened with "
        "scratching; it can leave dark or light patches that fade slowly.",
        lookalikes=("eczema", "tinea", "urticaria"),
        see_clinician="If the rash keeps coming back, spreads beyond the area of contact, affects the face or "
        "hands badly, or the cause is unclear: patch testing can find the allergen.",
        reading=(
            ("NHS: Contact dermatitis", NHS + "contact-dermatitis/"),
            ("DermNet: Allergic contact dermatitis", DERMNET + "allergic-contact-dermatitis"),
            MIND_THE_GAP,
        ),
    ),
    "alopecia-areata": ConditionText(
        summary="Round patches of sudden hair loss caused by the immune system attacking hair follicles.",
        about="Alopecia areata is an autoimmune condition in which hair falls out in smooth, round or oval "
        "patches, most often on the scalp or beard. The skin underneath looks normal and hair often regrows "
        "within months, though patches can recur or, rarely, spread to all scalp or body hair.",
        light_skin="Smooth, bald, skin-coloured patches without scale or redness; short broken 'exclamation "
        "mark' hairs at the edges; regrowing hair may first be white.",
        dark_skin="The same smooth patches, often easier to see against dark hair. Traction alopecia from tight "
        "hairstyles and scalp ringworm are important alternatives to rule out in children with tightly curled hair.",
        lookalikes=("androgenetic-alopecia", "tinea"),
        see_clinician="For any new patch of hair loss, especially with scaling, itch, redness or broken hairs "
        "(possible fungal infection), or when it spreads.",
        reading=(
            ("NHS: Hair loss", NHS + "hair-loss/"),
            ("DermNet: Alopecia areata", DERMNET + "alopecia-areata"),
        ),
    ),
    "androgenetic-alopecia": ConditionText(
        summary="Gradual, patterned thinning of scalp hair driven by genes and hormones.",
        about="Androgenetic alopecia is the most common hair loss in men and women. Hair follicles slowly "
        "shrink and produce finer, shorter hair: in men a receding hairline and thinning crown, in women "
        "widening of the central parting with the front hairline kept.",
        light_skin="Gradual thinning without scale, redness or bald patches; the scalp shows through more easily.",
        dark_skin="The same pattern. On tightly curled hair, thinning at the crown may also come from "
        "central centrifugal cicatricial alopecia, a scarring condition that needs early treatment.",
        lookalikes=("alopecia-areata",),
        see_clinician="If hair loss is sudden, patchy, itchy, painful or scaly, or comes with other symptoms "
        "such as irregular periods or fatigue.",
        reading=(
            ("NHS: Male-pattern baldness", NHS + "male-pattern-baldness/"),
            ("DermNet: Female pattern hair loss", DERMNET + "female-pattern-hair-loss"),
            ("DermNet: Male pattern hair loss", DERMNET + "male-pattern-hair-loss"),
        ),
    ),
    "basal-cell-carcinoma": ConditionText(
        summary="The most common skin cancer: slow-growing, rarely spreads, but damages the skin around it if left.",
        about="Basal cell carcinoma grows from cells in the lowest layer of the epidermis, mostly on sun-exposed "
        "skin of the face, ears, neck and upper body. It grows slowly over months to years and almost never "
        "spreads elsewhere, but can ulcerate and destroy nearby tissue.",
        light_skin="A pearly, shiny, pink or skin-coloured bump with fine visible blood vessels, or a sore that "
        "bleeds, crusts and does not heal; some are flat, red and scaly.",
        dark_skin="Less common, and more often pigmented: a shiny brown, blue-grey or black bump that can be "
        "mistaken for a mole or melanoma. The pearly rolled edge is still a useful clue.",
        lookalikes=("melanocytic-nevus", "melanoma", "scc-sccis", "sk-isk"),
        see_clinician="For any spot or sore that does not heal within four weeks, bleeds easily, or keeps growing.",
        reading=(
            ("NHS: Non-melanoma skin cancer", NHS + "non-melanoma-skin-cancer/"),
            ("DermNet: Basal cell carcinoma", DERMNET + "basal-cell-carcinoma"),
        ),
    ),
    "cyst": ConditionText(
        summary="A harmless, round lump under the skin filled with keratin, often with a small central opening.",
        about="Epidermoid (often called sebaceous) cysts are sacs lined with skin cells that fill with soft "
        "keratin. They are common on the face, neck, chest and back, move slightly under the skin, and may "
        "have a small dark pore on top. They can become inflamed or infected.",
        light_skin="A smooth, skin-coloured or yellowish dome; an inflamed cyst turns red, hot and tender.",
        dark_skin="A smooth dome of the same colour as the skin or slightly darker; inflammation shows as a "
        "darker, purple-brown, tender swelling rather than obvious redness.",
        lookalikes=("hidradenitis", "folliculitis", "acne"),
        see_clinician="If a lump grows quickly, is hard and fixed, becomes painful, red or discharges, or keeps "
        "coming back in the armpits or groin.",
        reading=(
            ("NHS: Skin cyst", NHS + "skin-cyst/"),
            ("DermNet: Epidermoid cyst", DERMNET + "epidermoid-cyst"),
        ),
    ),
    "eczema": ConditionText(
        summary="Atopic eczema: dry, itchy, inflamed skin that flares and settles, often starting in childhood.",
        about="Atopic eczema is a long-term condition in which the skin barrier is weak and the skin becomes "
        "dry, itchy and inflamed. It often runs in families with asthma and hay fever. Scratching thickens "
        "the skin (lichenification) and broken skin can become infected.",
        light_skin="Red, dry, scaly patches, classically in the creases of elbows and knees, on the hands, face "
        "and neck; weeping and crusting in flares.",
        dark_skin="Redness is often hard to see: patches look dark brown, purple or ash-grey, and may be on the "
        "outer (extensor) surfaces. Small bumps around hair follicles (follicular eczema), thickened skin and "
        "dark or pale patches after flares are common. Severity is easily underestimated.",
        lookalikes=("allergic-contact-dermatitis", "psoriasis", "tinea", "seborrheic-dermatitis"),
        see_clinician="If eczema disturbs sleep, does not settle with emollients and the prescribed creams, or "
        "suddenly becomes painful, weepy, crusted or punched out (possible infection, including eczema herpeticum).",
        reading=(
            ("NHS: Atopic eczema", NHS + "atopic-eczema/"),
            ("DermNet: Atopic dermatitis", DERMNET + "atopic-dermatitis"),
            MIND_THE_GAP,
        ),
    ),
    "folliculitis": ConditionText(
        summary="Inflamed or infected hair follicles: small itchy or tender bumps and pustules around hairs.",
        about="Folliculitis is inflammation of hair follicles, caused by bacteria, yeasts, shaving, friction "
        "or blocked follicles (for example from oils or hot tubs). It gives clusters of small bumps, each "
        "centred on a hair, on the beard area, scalp, buttocks, thighs or chest.",
        light_skin="Small red bumps and white-headed pustules around hairs, sometimes itchy.",
        dark_skin="Bumps may be skin-coloured, dark brown or purple, with a pustule at the tip; they often leave "
        "dark marks. In the beard area, razor bumps (pseudofolliculitis barbae) are common with tightly curled hair.",
        lookalikes=("acne", "hidradenitis", "cyst"),
        see_clinician="If bumps become large, painful boils, spread, come with fever, or keep returning despite "
        "changing shaving and hygiene habits.",
        reading=(
            ("DermNet: Folliculitis", DERMNET + "folliculitis"),
            MIND_THE_GAP,
        ),
    ),
    "hidradenitis": ConditionText(
        summary="Hidradenitis suppurativa: recurring painful lumps and abscesses in the armpits, groin and under the breasts.",
        about="Hidradenitis suppurativa is a long-term inflammatory disease of hair follicles in skin folds. "
        "Painful lumps come and go in the same places, can burst and drain, and over time form tunnels under "
        "the skin and rope-like scars. It usually starts after puberty and is often diagnosed years late.",
        light_skin="Red, tender nodules and abscesses, with blackheads in pairs and scarring in the folds.",
        dark_skin="Nodules may look dark red-brown, purple or the colour of the skin; dark marks and thick or "
        "keloid-like scars are common. It is reported more often in people of African descent.",
        lookalikes=("folliculitis", "cyst", "acne"),
        see_clinician="If painful lumps keep returning in the same skin folds, drain, or leave scars: early "
        "treatment limits damage.",
        reading=(
            ("NHS: Hidradenitis suppurativa", NHS + "hidradenitis-suppurativa/"),
            ("DermNet: Hidradenitis suppurativa", DERMNET + "hidradenitis-suppurativa"),
        ),
    ),
    "lentigo": ConditionText(
        summary="A flat, evenly brown spot caused by sun exposure or age (also called liver, age or sun spot).",
        about="A lentigo is a flat patch where pigment cells are increased, most often solar lentigines on the "
        "face, hands and shoulders of people with long sun exposure. They are harmless but show that the skin "
        "has had a lot of sun.",
        light_skin="Flat, light to dark brown, sharply outlined spots, a few millimetres to over a centimetre.",
        dark_skin="Less often noticed; they look like flat spots a shade or two darker than the surrounding "
        "skin and can be confused with dark marks left by inflammation.",
        lookalikes=("sk-isk", "melanocytic-nevus", "melanoma"),
        see_clinician="If a brown spot changes in size, shape or colour, has several colours, irregular edges, "
        "itches or bleeds: lentigo maligna (an early melanoma) can look similar.",
        reading=(
            ("DermNet: Solar lentigo", DERMNET + "solar-lentigo"),
            ("DermNet: Lentigo maligna", DERMNET + "lentigo-maligna"),
        ),
    ),
    "melanocytic-nevus": ConditionText(
        summary="A common mole: a harmless cluster of pigment cells, flat or raised, usually evenly coloured.",
        about="Melanocytic naevi (moles) are benign growths of pigment cells. Most people have between 10 and "
        "40. They appear in childhood and young adulthood, and may slowly raise or fade with age.",
        light_skin="Round or oval, evenly tan to dark brown, smooth edges, usually under 6 mm; raised moles may "
        "be skin-coloured.",
        dark_skin="Often darker brown to black; moles on the palms, soles and under the nails are relatively "
        "more common on darker skin, where a new or changing dark streak or spot needs attention.",
        lookalikes=("melanoma", "sk-isk", "lentigo"),
        see_clinician="If a mole is new in adulthood, changes in size, shape or colour, has uneven colours or "
        "edges, itches, bleeds, or looks different from your other moles (the 'ugly duckling').",
        reading=(
            ("NHS: Moles", NHS + "moles/"),
            ("DermNet: Melanocytic naevus", DERMNET + "melanocytic-naevus"),
        ),
    ),
    "melanoma": ConditionText(
        summary="A skin cancer of pigment cells that can spread; found early, it is usually curable.",
        about="Melanoma grows from melanocytes, often as a new dark spot or a change in an existing mole. "
        "The ABCDE signs (Asymmetry, irregular Border, several Colours, Diameter over 6 mm, Evolving) help "
        "spot it. It can appear anywhere, including skin that never sees the sun.",
        light_skin="An irregular brown-black spot with uneven colour (brown, black, red, blue-grey, white), "
        "often on the back in men and the legs in women.",
        dark_skin="Less common but more often found late. It appears more often on the palms, soles, under the "
        "nails (a new or widening dark band) and in the mouth; acral melanoma is easily mistaken for a "
        "bruise, wart, callus or fungal nail.",
        lookalikes=("melanocytic-nevus", "sk-isk", "basal-cell-carcinoma", "lentigo", "verruca-vulgaris"),
        see_clinician="Promptly, for any new or changing mole, a spot that looks different from the others, a "
        "dark streak in a nail, or a sore on the sole or palm that does not heal.",
        reading=(
            ("NHS: Melanoma skin cancer", NHS + "melanoma-skin-cancer/"),
            ("DermNet: Melanoma", DERMNET + "melanoma"),
            ("DermNet: Acral lentiginous melanoma", DERMNET + "acral-lentiginous-melanoma"),
        ),
    ),
    "post-inflammatory-hyperpigmentation": ConditionText(
        summary="Dark marks left where the skin was inflamed or injured (after acne, eczema, burns or cuts).",
        about="Post-inflammatory hyperpigmentation (PIH) is extra pigment laid down after inflammation or "
        "injury. It is not a disease of its own but a trace of one; it fades over months to years, faster "
        "when the cause is treated and the skin protected from sun.",
        light_skin="Pink-brown or light brown flat marks; in fair skin, lingering redness after acne is more "
        "common than brown marks.",
        dark_skin="Very common: flat marks from brown to grey-black in the shape of the earlier rash or spots. "
        "Deeper (dermal) pigment looks blue-grey and fades slowly.",
        lookalikes=("lentigo", "tinea-versicolor", "acne"),
        see_clinician="If marks appear without a clear earlier rash or injury, keep spreading, or a treatment "
        "is needed for the condition that causes them.",
        reading=(
            ("DermNet: Postinflammatory hyperpigmentation", DERMNET + "postinflammatory-hyperpigmentation"),
            MIND_THE_GAP,
        ),
    ),
    "psoriasis": ConditionText(
        summary="An immune condition with well-defined, thick, scaly plaques, often on elbows, knees and scalp.",
        about="Psoriasis makes skin cells turn over far faster than usual, building up thick, scaly plaques. "
        "It is long-term, with flares and quieter periods, and may come with nail pitting and joint pain "
        "(psoriatic arthritis).",
        light_skin="Sharply outlined pink-red plaques with silvery-white scale.",
        dark_skin="Plaques look violet, dark brown or grey with grey scale, and are often thicker; after "
        "treatment they can leave dark or light patches. Scalp psoriasis can be mistaken for seborrheic dermatitis.",
        lookalikes=("eczema", "seborrheic-dermatitis", "tinea", "scc-sccis"),
        see_clinician="If plaques are widespread, affect daily life, do not respond to treatment, or come with "
        "swollen or painful joints.",
        reading=(
            ("NHS: Psoriasis", NHS + "psoriasis/"),
            ("DermNet: Psoriasis", DERMNET + "psoriasis"),
            MIND_THE_GAP,
        ),
    ),
    "scc-sccis": ConditionText(
        summary="Squamous cell carcinoma and its in-situ form (Bowen's disease): skin cancers of the outer skin cells.",
        about="Squamous cell carcinoma in situ (Bowen's disease) is confined to the top layer of skin; invasive "
        "squamous cell carcinoma grows deeper and can, uncommonly, spread. Sun exposure is the main cause on "
        "light skin; on dark skin it arises more often in scars, chronic wounds and non-sun-exposed sites.",
        light_skin="In situ: a flat, red, scaly patch that slowly grows. Invasive: a firm, scaly or crusted "
        "lump, sometimes tender or ulcerated, on sun-exposed skin.",
        dark_skin="May be skin-coloured, brown or darker than the skin, and more often on the legs, genitals "
        "or in an old scar or ulcer. Students recognise it far less often on dark skin (Fenton et al. 2020), "
        "so a non-healing lump or scaly patch deserves a look.",
        lookalikes=("actinic-keratosis", "basal-cell-carcinoma", "eczema", "verruca-vulgaris"),
        see_clinician="For any lump, scaly patch or sore that grows, bleeds or does not heal within four weeks, "
        "especially in a scar or long-standing wound.",
        reading=(
            ("NHS: Non-melanoma skin cancer", NHS + "non-melanoma-skin-cancer/"),
            ("NHS: Bowen's disease", NHS + "bowens-disease/"),
            ("DermNet: Cutaneous squamous cell carcinoma", DERMNET + "cutaneous-squamous-cell-carcinoma"),
        ),
    ),
    "sk-isk": ConditionText(
        summary="Seborrheic keratosis: a harmless, waxy, 'stuck-on' growth that is very common with age.",
        about="Seborrheic keratoses are benign growths of the outer skin that appear from middle age, often many "
        "at once on the trunk, face and scalp. An irritated (inflamed) seborrheic keratosis can become red, "
        "crusted and itchy, and look worrying.",
        light_skin="Light tan to dark brown, warty or waxy, raised spots that look stuck on the skin.",
        dark_skin="Usually dark brown to black. Many small ones on the cheeks and around the eyes are called "
        "dermatosis papulosa nigra, common on skin of African and Asian descent.",
        lookalikes=("melanoma", "verruca-vulgaris", "melanocytic-nevus", "actinic-keratosis"),
        see_clinician="If a growth changes quickly, bleeds, looks different from your others, or you are not "
        "sure it is one: melanoma can look similar.",
        reading=(
            ("NHS: Seborrhoeic keratosis", NHS + "seborrhoeic-keratosis/"),
            ("DermNet: Seborrhoeic keratosis", DERMNET + "seborrhoeic-keratosis"),
        ),
    ),
    "scar-condition": ConditionText(
        summary="Scars that heal raised or spread: hypertrophic scars and keloids.",
        about="After an injury, surgery, piercing or acne, the skin repairs itself with scar tissue. A "
        "hypertrophic scar stays within the wound and often flattens with time; a keloid grows beyond the "
        "original wound and can keep growing, itch or hurt.",
        light_skin="Raised, firm, pink or red scars that fade to pale over months.",
        dark_skin="Keloids are much more common on darker skin: shiny, firm, dark brown to purple growths, "
        "often on the earlobes, chest, shoulders and jaw; scars may also heal darker or lighter than the skin.",
        lookalikes=("cyst", "hidradenitis", "post-inflammatory-hyperpigmentation"),
        see_clinician="If a scar keeps growing, is painful or itchy, limits movement, or a lump appears in a "
        "scar that was stable (rarely, a skin cancer).",
        reading=(
            ("NHS: Keloids", NHS + "keloids/"),
            ("DermNet: Keloid and hypertrophic scar", DERMNET + "keloid-and-hypertrophic-scar"),
        ),
    ),
    "seborrheic-dermatitis": ConditionText(
        summary="A common, recurring scaly rash on oily areas: scalp (dandruff), eyebrows, sides of the nose, chest.",
        about="Seborrheic dermatitis is an inflammatory reaction linked to Malassezia yeasts on oily skin. It "
        "comes and goes, worsens with stress and cold weather, and in babies shows as cradle cap.",
        light_skin="Pink-red patches with greasy yellowish scale on the scalp, eyebrows, beside the nose and "
        "behind the ears.",
        dark_skin="Scale may be white-grey; patches can look lighter than the surrounding skin (especially on "
        "the face and hairline of children) or darker, with little visible redness. Sometimes ring-shaped "
        "(petaloid) around the hairline.",
        lookalikes=("psoriasis", "eczema", "tinea", "tinea-versicolor"),
        see_clinician="If it does not improve with anti-dandruff shampoos or pharmacy creams, is widespread, or "
        "appears suddenly and severely in an adult.",
        reading=(
            ("NHS: Seborrhoeic dermatitis", NHS + "seborrhoeic-dermatitis/"),
            ("DermNet: Seborrhoeic dermatitis", DERMNET + "seborrhoeic-dermatitis"),
            MIND_THE_GAP,
        ),
    ),
    "skin-tag": ConditionText(
        summary="A small, soft, harmless flap of skin on a stalk, common in skin folds.",
        about="Skin tags (acrochordons) are benign growths of loose skin, often in the armpits, neck, groin and "
        "eyelids. They are more common with age, in pregnancy and with diabetes or excess weight.",
        light_skin="Soft, skin-coloured or light brown, a few millimetres long, on a narrow stalk.",
        dark_skin="Usually darker brown than the surrounding skin; otherwise the same soft, stalked growth.",
        lookalikes=("melanocytic-nevus", "sk-isk", "verruca-vulgaris"),
        see_clinician="If a growth bleeds, changes colour, grows quickly, or you are not sure it is a skin tag.",
        reading=(
            ("NHS: Skin tags", NHS + "skin-tags/"),
            ("DermNet: Skin tag", DERMNET + "skin-tag"),
        ),
    ),
    "stasis-dermatitis": ConditionText(
        summary="Venous (varicose) eczema: itchy, discoloured skin on the lower legs from poor vein function.",
        about="When leg veins do not return blood well, pressure builds in the lower legs, fluid leaks into the "
        "tissue and the skin becomes inflamed, itchy and discoloured. It is common with varicose veins, after "
        "deep vein thrombosis and with age, and can lead to leg ulcers.",
        light_skin="Red, scaly, itchy patches around the ankles and shins, with orange-brown speckled staining "
        "and swelling.",
        dark_skin="Patches look dark brown, violet or grey rather than red; the brown staining may blend with "
        "the skin, so swelling, thickening and scaling are the clearer signs.",
        lookalikes=("eczema", "allergic-contact-dermatitis", "psoriasis"),
        see_clinician="If the leg becomes hot, painful or suddenly more swollen (possible infection or clot), "
        "if the skin breaks down into an ulcer, or it does not settle with emollients and compression.",
        reading=(
            ("NHS: Varicose eczema", NHS + "varicose-eczema/"),
            ("DermNet: Venous eczema", DERMNET + "venous-eczema"),
        ),
    ),
    "tinea": ConditionText(
        summary="Ringworm: a fungal infection of skin, scalp or nails, often ring-shaped with a scaly edge.",
        about="Dermatophyte fungi infect the outer skin, hair and nails: tinea corporis (body), pedis (athlete's "
        "foot), cruris (groin), capitis (scalp). It spreads by contact with people, animals and floors, and "
        "is treated with antifungals; steroid creams alone make it worse and harder to recognise.",
        light_skin="A red ring with a raised, scaly edge that spreads outwards, with clearer skin in the middle.",
        dark_skin="The ring may be dark brown, grey or violet, or lighter than the skin; the scaly advancing "
        "edge is the clue. Scalp ringworm in children can show as scaly patches of broken hair or only dandruff.",
        lookalikes=("eczema", "psoriasis", "tinea-versicolor", "allergic-contact-dermatitis"),
        see_clinician="If it does not clear after two weeks of pharmacy antifungal cream, affects the scalp or "
        "nails, is widespread, or you have diabetes or a weak immune system.",
        reading=(
            ("NHS: Ringworm", NHS + "ringworm/"),
            ("DermNet: Tinea corporis", DERMNET + "tinea-corporis"),
            MIND_THE_GAP,
        ),
    ),
    "tinea-versicolor": ConditionText(
        summary="Pityriasis versicolor: a common yeast overgrowth giving patches lighter or darker than the skin.",
        about="Malassezia yeasts that live on everyone's skin can overgrow in warm, humid conditions and change "
        "skin colour in small patches on the chest, back and shoulders. It is not contagious and is treated "
        "with antifungals, but colour takes months to even out.",
        light_skin="Pink, light brown or tan patches with fine scale that shows when the skin is stretched; "
        "they stay pale after sun exposure.",
        dark_skin="Usually pale (hypopigmented) patches, sometimes darker ones, with fine scale; easily "
        "mistaken for vitiligo, though the skin is rarely completely white.",
        lookalikes=("vitiligo", "post-inflammatory-hyperpigmentation", "seborrheic-dermatitis", "tinea"),
        see_clinician="If patches do not improve after treatment, keep returning, or you are unsure whether they "
        "are pale patches of another cause.",
        reading=(
            ("NHS: Pityriasis versicolor", NHS + "pityriasis-versicolor/"),
            ("DermNet: Pityriasis versicolor", DERMNET + "pityriasis-versicolor"),
        ),
    ),
    "urticaria": ConditionText(
        summary="Hives: raised, itchy welts that come and go within a day, often in crops.",
        about="Urticaria is swelling in the skin from histamine release, triggered by infections, medicines, "
        "foods, heat, pressure or unknown causes. Each weal usually fades within 24 hours while new ones "
        "appear; deeper swelling of lips or eyelids is angioedema.",
        light_skin="Raised pink or red weals with a pale centre and red flare, in rings or map-like shapes.",
        dark_skin="Weals may be skin-coloured or slightly darker or lighter, with little visible redness: the "
        "raised, shifting shape and the itch are the clues.",
        lookalikes=("allergic-contact-dermatitis", "eczema"),
        see_clinician="Urgently (call emergency services) if swelling affects the lips, tongue or throat or "
        "breathing is difficult; otherwise if hives last more than six weeks or individual weals last days "
        "or leave bruises.",
        reading=(
            ("NHS: Hives", NHS + "hives/"),
            ("DermNet: Urticaria, an overview", DERMNET + "urticaria-an-overview"),
            MIND_THE_GAP,
        ),
    ),
    "verruca-vulgaris": ConditionText(
        summary="Common warts: rough, harmless growths caused by the human papillomavirus (HPV).",
        about="Warts are skin growths caused by HPV infecting the outer skin, often on fingers, hands, knees "
        "and feet (verrucas). They are common in children, spread by contact, and most clear on their own "
        "within a few years.",
        light_skin="Firm, rough, skin-coloured bumps, often with tiny black dots (clotted blood vessels).",
        dark_skin="Often slightly darker than the surrounding skin, or grey; the rough surface, black dots and "
        "interrupted skin lines are the clues.",
        lookalikes=("sk-isk", "scc-sccis", "skin-tag"),
        see_clinician="If a wart bleeds, changes, grows fast, is on the face or genitals, spreads widely, or you "
        "have a weak immune system; in adults, a 'wart' on the sole or nail fold that does not respond to "
        "treatment needs checking for melanoma or carcinoma.",
        reading=(
            ("NHS: Warts and verrucas", NHS + "warts-and-verrucas/"),
            ("DermNet: Viral wart", DERMNET + "viral-wart"),
        ),
    ),
    "vitiligo": ConditionText(
        summary="Patches of skin that lose their pigment completely, because pigment cells are destroyed.",
        about="Vitiligo is an autoimmune condition that removes melanocytes, leaving milky-white patches, often "
        "symmetrical, around the mouth and eyes, on hands, elbows, knees and genitals. It is not contagious. "
        "It can affect wellbeing strongly, especially where it is highly visible.",
        light_skin="Chalk-white patches with sharp edges that may be hard to see until surrounding skin tans; "
        "a UV (Wood's) lamp makes them stand out.",
        dark_skin="Striking, sharply outlined white patches; hair in them may turn white. Partial pigment loss "
        "at the edges can give three shades (trichrome vitiligo).",
        lookalikes=("tinea-versicolor", "scar-condition"),
        see_clinician="For new white patches, to confirm the diagnosis and discuss treatment early (it works "
        "best on recent patches), and for support with the emotional impact.",
        reading=(
            ("NHS: Vitiligo", NHS + "vitiligo/"),
            ("DermNet: Vitiligo", DERMNET + "vitiligo"),
        ),
    ),
    "other": ConditionText(
        summary="Images of skin conditions outside the 26 named in the atlas's taxonomy.",
        about="This group collects images whose condition is none of the 26 named ones. It is kept so that "
        "searches and teaching sets show the full range of skin seen in practice, not only the common "
        "conditions; it is not one disease.",
        light_skin="Varies with the condition.",
        dark_skin="Varies with the condition; redness may show as violet, grey or dark brown on darker skin.",
        lookalikes=(),
        see_clinician="For any skin change that is new, changing, painful, bleeding, not healing, or worrying you.",
        reading=(
            ("DermNet: topics A-Z", "https://dermnetnz.org/topics"),
            ("NHS: Health A to Z", NHS),
            MIND_THE_GAP,
        ),
    ),
}

